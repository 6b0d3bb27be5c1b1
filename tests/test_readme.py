"""The README and the manuals it links to: their examples run as written, their links resolve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_readme_first_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    script = tmp_path / "first.py"
    script.write_text(
        code.group(1) + "\nprint('rows', run.sql('SELECT count(*) AS n FROM messages').column('n')[0])\n"
    )
    env = dict(os.environ, MOOT_RUNTIME="local")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = re.search(r"'messages': (\d+)", out.stdout)
    assert summary is not None and f"rows {summary.group(1)}" in out.stdout
    assert (tmp_path / "run.duckdb").exists()


def run_section_example(tmp_path: Path, manual: str, heading: str, extra: str = "") -> str:
    """Run the first Python block under `heading` in the manual `manual` (plus `extra`); its stdout."""
    text = (ROOT / manual).read_text()
    section = text[text.index(heading) :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    script = tmp_path / "example.py"
    script.write_text(code.group(1) + extra)
    env = dict(os.environ, MOOT_RUNTIME="local")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_readme_llm_agent_runs_offline(tmp_path: Path) -> None:
    stdout = run_section_example(tmp_path, "orchestrator/llm/README.md", "# LLM agents")
    import duckdb

    con = duckdb.connect(str(tmp_path / "llm.duckdb"), read_only=True)
    calls = con.execute("SELECT count(*), count(error_type), min(model) FROM llm_calls").fetchall()
    con.close()
    assert calls == [(500, 0, "moot/simulated")]
    assert "calls" in stdout and "latency_p50" in stdout


def test_readme_friedkin_johnsen_example_reaches_the_closed_form(tmp_path: Path) -> None:
    closed = "np.linalg.solve(np.eye(3) - np.diag(lam) @ w, (1 - lam) * x0)"
    stdout = run_section_example(
        tmp_path, "agents/README.md", "# Opinion dynamics", f"\nprint('gap', abs(final - {closed}).max())\n"
    )
    gap = re.search(r"gap ([0-9.e-]+)", stdout)
    assert gap is not None and float(gap.group(1)) < 1e-9, stdout


MANUALS = [
    "README.md",
    "agents/README.md",
    "protocols/README.md",
    "protocols/swarm_grid/README.md",
    "protocols/debate/README.md",
    "protocols/social_feed/README.md",
    "orchestrator/llm/README.md",
    "benchmarks/README.md",
    "deploy/README.md",
]


def anchors(markdown: Path) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as '-'."""
    headings = re.findall(r"^#+ (.+)$", markdown.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("manual", MANUALS)
def test_every_link_of_a_manual_resolves(manual: str) -> None:
    path = ROOT / manual
    links = re.findall(r"\]\(([^)#]+)(?:#([^)]*))?\)", path.read_text())
    local = [(link, at) for link, at in links if not link.startswith(("http://", "https://", "mailto:"))]
    assert [link for link, _ in local if not (path.parent / link).exists()] == []
    assert [(link, at) for link, at in local if at and at not in anchors(path.parent / link)] == []


def test_the_readme_stays_a_short_page_that_links_every_protocols_manual() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 345
    for name in (
        "swarm_grid",
        "debate",
        "social_feed",
        "gossip_learning",
        "blackbox_consensus",
        "game_master",
        "info_asymmetry",
    ):
        assert f"protocols/{name}/README.md" in text
