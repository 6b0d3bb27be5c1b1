"""The README's first five minutes run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_readme_llm_agent_runs_offline(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## LLM agents") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    script = tmp_path / "llm.py"
    script.write_text(code.group(1))
    env = dict(os.environ, MOOT_RUNTIME="local")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    import duckdb

    con = duckdb.connect(str(tmp_path / "llm.duckdb"), read_only=True)
    calls = con.execute("SELECT count(*), count(error_type), min(model) FROM llm_calls").fetchall()
    con.close()
    assert calls == [(500, 0, "moot/simulated")]
    assert "calls" in out.stdout and "latency_p50" in out.stdout
