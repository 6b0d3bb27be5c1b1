"""Questions for debate societies, and how answers are read from text.

- `arithmetic(n, seed)`: Du et al.'s arithmetic questions, ``a+b*c+d-e*f`` with six
  integers in [0, 30), generated offline with exact answers.
- `load_jsonl(path)`: a user's dataset, one JSON object per line: ``question``,
  ``answer``, optional ``choices`` (multiple choice; the answer is a letter or the
  choice's text).
- `extract`: the answer in a model's text, per question kind (reference/debate.md
  §1.4 and §2.1): multiple choice (MachineSoM's rule, option-text quirk included,
  or Du's), numbers (Du's arithmetic rule), or ``\\boxed{}`` (brace-matched).
- `answer_code`: answers as numbers, so that a million of them are a numpy
  column: a number is itself, a choice its index, any other text a stable code of
  its lower-cased, stripped form; no answer is NaN.
- `strict_majority`, `conforms`, `consistency`: MachineSoM's metrics (§1.5), the
  reference implementations the SQL views are tested against.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from agents.errors import ConfigError

__all__ = [
    "Question",
    "answer_code",
    "arithmetic",
    "boxes",
    "consistency",
    "conforms",
    "extract",
    "load_jsonl",
    "normalize_math",
    "strict_majority",
]

Kind = Literal["number", "choice", "boxed", "text"]
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Question:
    """One question.

    Attributes:
        text: The question as the agents see it.
        answer: The ground truth (a number as text, a letter, or any text).
        kind: How answers are read: ``number``, ``choice``, ``boxed`` or ``text``.
        choices: The options of a multiple-choice question.
    """

    text: str
    answer: str
    kind: Kind = "number"
    choices: tuple[str, ...] = ()

    @property
    def truth(self) -> float:
        """The ground truth as an answer code (a MATH answer normalised as answers are)."""
        answer = normalize_math(self.answer) if self.kind == "boxed" else self.answer
        return answer_code(answer, self)

    def prompt(self) -> str:
        """The question as the first user turn (Du et al.'s and MachineSoM's wording per kind)."""
        if self.kind == "choice":
            opts = ", ".join(f"{LETTERS[i]}) {c}" for i, c in enumerate(self.choices))
            return (
                f"Can you answer the following question as accurately as possible? {self.text}: {opts} "
                "Explain your answer, putting the answer in the form (X) at the end of your response."
            )
        if self.kind == "boxed":
            return (
                f"Here is a math problem written in LaTeX:{self.text}\nPlease carefully consider it and "
                "explain your reasoning. Put your answer in the form \\boxed{answer}, at the end of your "
                "response."
            )
        return self.text


def arithmetic(n: int, seed: int = 0) -> list[Question]:
    """Du et al.'s arithmetic task: ``What is the result of a+b*c+d-e*f?``, integers in [0, 30)."""
    if n < 1:
        raise ConfigError(f"arithmetic(n) needs n >= 1 questions, got {n}.")
    rng = np.random.default_rng([seed, 0xDEB8])
    nums = rng.integers(0, 30, size=(n, 6))
    out = []
    for a, b, c, d, e, f in nums.tolist():
        text = (
            f"What is the result of {a}+{b}*{c}+{d}-{e}*{f}? "
            "Make sure to state your answer at the end of the response."
        )
        out.append(Question(text, str(a + b * c + d - e * f), "number"))
    return out


def load_jsonl(path: str | Path) -> list[Question]:
    """Questions from a JSONL file: ``{"question": ..., "answer": ..., "choices": [...]}`` per line.

    A row with ``choices`` is multiple choice (its answer a letter, or one choice's
    text); a row whose answer is a number is read as a number; any other answer is
    read from ``\\boxed{}``.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"No question file at {str(p)!r}; give a JSONL file with question and answer per line."
        )
    out = []
    for k, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{p.name} line {k} is not JSON ({exc.msg}); write one JSON object per line."
            ) from None
        if not isinstance(row, dict) or "question" not in row or "answer" not in row:
            have = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise ConfigError(
                f"{p.name} line {k} needs 'question' and 'answer' (it has: {have}); e.g. "
                '{"question": "2+2?", "answer": "4"}.'
            )
        choices = tuple(str(c) for c in row.get("choices") or ())
        answer = str(row["answer"]).strip()
        if choices:
            if len(choices) > len(LETTERS):
                raise ConfigError(f"{p.name} line {k} has {len(choices)} choices; at most {len(LETTERS)}.")
            if answer in choices and answer.upper() not in LETTERS[: len(choices)]:
                answer = LETTERS[choices.index(answer)]
            if answer.upper() not in LETTERS[: len(choices)]:
                raise ConfigError(
                    f"{p.name} line {k}: answer {answer!r} is neither a letter A-{LETTERS[len(choices) - 1]} "
                    "nor one of the choices."
                )
            out.append(Question(str(row["question"]), answer.upper(), "choice", choices))
        elif _number(answer) is not None:
            out.append(Question(str(row["question"]), answer, "number"))
        else:
            out.append(Question(str(row["question"]), answer, "boxed"))
    if not out:
        raise ConfigError(f"{p.name} holds no questions.")
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def boxes(text: str) -> list[str]:
    """The contents of every complete ``\\boxed{...}`` in `text`, braces matched, in order.

    As MachineSoM reads them: an unterminated last box is not an answer, so the answer
    is then the last complete one.
    """
    out: list[str] = []
    flag = "\\boxed{"
    start = text.find(flag)
    while start >= 0:
        i, depth = start + len(flag), 1
        j = i
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth:
            break  # unterminated: no later box can be complete either
        out.append(text[i : j - 1])
        start = text.find(flag, j)
    return out


def last_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}``, braces matched."""
    found = boxes(text)
    return found[-1] if found else None


MATH_NOISE = (
    " \\text{ positive integers, } 12 \\text{ negative integers}",
    " \\, \\text{cm}",
    "\\, \\text{cm}",
    "^\\circ",
    "{\\text{Degree of }} g(x) = ",
    "°",
    " \\text{ cm}",
    "\\text{ cm}",
    "b = ",
    "r = ",
    "x = ",
    "m+n = ",
    "\\text{ degrees}",
    "x + y + z = ",
)
"""Unit and variable fragments MachineSoM deletes from a MATH answer before comparing it
(reference/debate.md 1.4), in its order."""


def normalize_math(answer: str) -> str:
    """A MATH answer as MachineSoM compares it: its noise fragments deleted, braces dropped,
    and its two hard-coded special cases (a product it spells out, thousands separators in
    two answers of its sample)."""
    text = answer.strip()
    if text == "{2^3 \\times 3^2 \\times 5 \\times 7}":
        return "2520"
    for noise in MATH_NOISE:
        text = text.replace(noise, "")
    text = text.replace("{", "").replace("}", "")
    if text in ("978,121", "99,940,009"):
        text = text.replace(",", "")
    return text.strip()


def extract(
    text: str,
    question: Question,
    mode: Literal["machinesom", "du"] = "machinesom",
    *,
    faithful_letters: bool = False,
) -> str | None:
    """The answer in `text` for `question`, or None (reference/debate.md §1.4, §2.1).

    Args:
        faithful_letters: Read a choice the way MachineSoM's code does, string comparison
            included: its check ``"A" <= x <= "D"`` accepts a word in parentheses such as
            "(about)" as the answer. Off (the default), only a single letter of the
            question's options counts.
    """
    if question.kind == "choice":
        return _choice(text, question.choices, mode, faithful_letters)
    if question.kind == "boxed":
        boxed = last_boxed(text)
        return None if boxed is None else normalize_math(boxed)
    if question.kind == "number":
        boxed = last_boxed(text)
        if boxed is not None and _number(boxed) is not None:
            return _plain(_number(boxed))
        for token in reversed(text.split()):  # Du: the last whitespace token that parses as a number
            value = _number(token.replace(",", ".").strip(".?!:;()[]{}*`'\"$"))
            if value is not None:
                return _plain(value)
        return None
    return text.strip() or None


def _plain(value: float | None) -> str:
    assert value is not None
    return str(int(value)) if value == int(value) else str(value)


def _choice(text: str, choices: Sequence[str], mode: str, faithful: bool = False) -> str | None:
    letters = LETTERS[: len(choices) or 4]
    if mode == "du":
        found = re.findall(r"\((\w)\)", text)
        return found[-1].upper() if found else None
    if "combined answer" in text.lower():
        return None
    regex_answer = None
    for m in reversed(list(re.finditer(r"\((\w+)\)|(\w+)\)", text))):
        cand = (m.group(1) or m.group(2) or "").upper()
        if ("A" <= cand <= "D") if faithful else (cand in letters and len(cand) == 1):
            regex_answer = cand
            break
    text_answer, best = None, -1
    low = text.lower()
    for i, c in enumerate(choices):
        option = str(c).strip().lower()  # MachineSoM strips each option's text: ' 1/2' is '1/2'
        pos = low.rfind(option) if option else -1
        if pos > best:
            best, text_answer = pos, letters[i]
    # MachineSoM's quirk: when both exist and disagree, the option text found last wins.
    return text_answer if text_answer is not None else regex_answer


def answer_code(answer: str | None, question: Question) -> float:
    """An answer as a number: NaN for none, a number itself, a choice its index, other text a stable code."""
    if answer is None:
        return math.nan
    text = str(answer).strip()
    if question.kind == "choice" and len(text) == 1 and text.upper() in LETTERS:
        return float(LETTERS.index(text.upper()))
    value = _number(text)
    if value is not None and question.kind != "choice":
        return value
    digest = hashlib.sha256(text.lower().encode()).digest()
    return float(2**52 + int.from_bytes(digest[:6], "little"))  # beyond any answer a question asks for


def strict_majority(answers: Sequence[object]) -> object:
    """MachineSoM's majority: the most frequent answer if it is unique at the top and given at
    least twice; None otherwise (None answers count, so two of them make None the majority)."""
    counts = Counter(answers).most_common()
    if not counts or counts[0][1] < 2 or (len(counts) > 1 and counts[1][1] == counts[0][1]):
        return None
    return counts[0][0]


def conforms(previous: Sequence[object], current: Sequence[object]) -> list[bool]:
    """Per agent, whether its current answer is in the previous round's majority set (the answers
    with the top count, counted over all agents, when that count is at least 2)."""
    counts = Counter(previous)
    top = max(counts.values()) if counts else 0
    majority = {a for a, c in counts.items() if c == top} if top >= 2 else set()
    return [a in majority for a in current]


def consistency(answers: Sequence[object]) -> int:
    """How many distinct answers, after ``str().lower().strip()`` (None counts as "none")."""
    return len({str(a).lower().strip() for a in answers})
