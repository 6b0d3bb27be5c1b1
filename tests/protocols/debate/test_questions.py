"""reference/debate.md §1.7's oracles: strict majority, conformity, consistency, the extractors;
and the question sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from protocols.debate.questions import (
    Question,
    answer_code,
    arithmetic,
    conforms,
    consistency,
    extract,
    last_boxed,
    load_jsonl,
    strict_majority,
)


@pytest.mark.parametrize(
    ("answers", "majority"),
    [
        (["A", "A", "B"], "A"),
        (["A", "B", "C"], None),
        ([None, None, "A"], None),
        (["A", "A", "B", "B"], None),
    ],
)
def test_strict_majority_on_the_hand_made_tables(answers: list[str | None], majority: str | None) -> None:
    assert strict_majority(answers) == majority


def test_conformity_on_the_given_transitions() -> None:
    assert conforms(["A", "A", "B"], ["A", "A", "A"]) == [True, True, True]
    assert conforms(["A", "A", "B"], ["B", "A", "B"]) == [False, True, False]
    assert conforms(["A", "B", "C"], ["A", "A", "A"]) == [False, False, False]  # no majority set


def test_consistency_lowers_and_strips() -> None:
    assert consistency(["A", "a ", None]) == 2


def test_mmlu_extraction_keeps_machinesoms_option_text_quirk() -> None:
    q = Question("Which is prime?", "B", "choice", ("4", "2", "6", "8"))
    text = "Since 2 is the only even prime, the answer is (D) ... no wait, 2."
    assert extract(text, q) == "B"  # the option text found last ("2") wins over the regex's (D)
    assert extract(text, q, mode="du") == "D"
    assert extract("The combined answer is (A)", q) is None
    assert extract("I pick (C)", Question("Pick", "C", "choice", ("apple", "pear", "plum", "fig"))) == "C"


def test_boxed_extraction_matches_nested_braces() -> None:
    assert last_boxed(r"so \boxed{3} or rather \boxed{\frac{1}{2}} done") == r"\frac{1}{2}"
    q = Question("x", r"\frac{1}{2}", "boxed")
    assert extract(r"... \boxed{\frac{1}{2}}", q) == r"\frac12"  # MachineSoM drops the braces
    assert answer_code(extract(r"... \boxed{\frac{1}{2}}", q), q) == q.truth  # and so for the truth


@pytest.mark.parametrize(
    ("boxed", "read"),
    [
        (r"x = 5", "5"),
        (r"m+n = 17", "17"),
        (r"90^\circ", "90"),
        (r"12\text{ cm}", "12"),
        (r"30 \text{ degrees}", "30"),
        (r"{12}", "12"),
        (r"b = \frac{3}{4}", r"\frac34"),
        (r"978,121", "978121"),
        (r"{2^3 \times 3^2 \times 5 \times 7}", "2520"),
        (r"1,000", "1,000"),  # only its two listed answers lose their commas
    ],
)
def test_math_answers_are_normalised_as_machinesom_compares_them(boxed: str, read: str) -> None:
    q = Question("x", read, "boxed")
    assert extract(rf"The answer is \boxed{{{boxed}}}.", q) == read


def test_an_unterminated_last_box_leaves_the_last_complete_one() -> None:
    q = Question("x", "4", "boxed")
    assert extract(r"first \boxed{4}, then \boxed{\frac{5}{", q) == "4"
    assert extract(r"only \boxed{5", q) is None


def test_option_texts_are_stripped_and_the_letter_check_is_strict_unless_faithful() -> None:
    q = Question("Which?", "A", "choice", (" 1/2", " 3/4", " 5/6", " 7/8"))
    assert extract("I am sure it is 1/2", q) == "A"  # ' 1/2' found as '1/2'
    words = Question("Which?", "A", "choice", ("red", "green", "blue", "grey"))
    text = "It is (A), I think (about) so"
    assert extract(text, words) == "A"  # a word in parentheses is not an option letter
    # MachineSoM's "A" <= x <= "D" string check takes "ABOUT" (behind the faithful flag).
    assert extract(text, words, faithful_letters=True) == "ABOUT"
    assert extract("(e) then (b)", words, faithful_letters=True) == "B"  # E > D: skipped as there


def test_number_extraction_takes_du_arithmetic_last_number() -> None:
    q = arithmetic(1)[0]
    assert extract("First 3+4 = 7, then 12. So the answer is 19.", q) == "19"
    assert extract("The result is -5,0", q) == "-5"  # a comma is a decimal point
    assert extract("no idea", q) is None


def test_arithmetic_questions_have_exact_answers() -> None:
    for q in arithmetic(50, seed=3):
        a, b, c, d, e, f = (
            int(x)
            for x in q.text.split("of ")[1]
            .split("?")[0]
            .replace("+", " ")
            .replace("*", " ")
            .replace("-", " ")
            .split()
        )
        assert q.answer == str(a + b * c + d - e * f)
    assert arithmetic(5, seed=3) == arithmetic(5, seed=3)


def test_answer_codes_align_choices_numbers_and_text() -> None:
    mc = Question("q", "B", "choice", ("x", "y"))
    assert answer_code("b", mc) == 1.0 and answer_code(None, mc) != answer_code(None, mc)  # NaN
    assert answer_code("42", Question("q", "42")) == 42.0
    boxed = Question("q", r"\pi", "boxed")
    assert answer_code(r"\PI ", boxed) == answer_code(r"\pi", boxed) > 2**52


def test_jsonl_rows_are_read_and_bad_rows_named(tmp_path: Path) -> None:
    good = tmp_path / "q.jsonl"
    rows = [
        {"question": "2+2?", "answer": "4"},
        {"question": "Capital of France?", "answer": "Paris", "choices": ["Rome", "Paris"]},
        {"question": "Simplify", "answer": r"\frac{1}{2}"},
    ]
    good.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    qs = load_jsonl(good)
    assert [(q.kind, q.answer) for q in qs] == [("number", "4"), ("choice", "B"), ("boxed", r"\frac{1}{2}")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "2+2?", "answer": "4"}\n{"question": "no answer here"}\n')
    with pytest.raises(
        ConfigError, match=r"bad.jsonl line 2 needs 'question' and 'answer' \(it has: question\)"
    ):
        load_jsonl(bad)
