"""Writing a benchmark's results: JSON for machines, a Markdown table for people."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def write(name: str, data: dict[str, Any], title: str, header: list[str], rows: list[list[object]]) -> str:
    """Write results/NAME.json and results/NAME.md; return the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    align = ["---" if i == 0 else "---:" for i in range(len(header))]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += [
        "| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |" for row in rows
    ]
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(text)
    return text


def in_fresh_process(script: str, *args: object) -> dict[str, Any]:
    """Run ``python script args...`` and return the JSON it printed after ``RESULT `` (each case of a
    benchmark in a fresh process, so one case's memory and Ray instance never shape the next)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, script, *map(str, args)], capture_output=True, text=True, timeout=3600
    )
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        raise SystemExit(out.returncode)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    print(result, flush=True)
    return result


class PeakRss:
    """Samples the summed RSS of this process and every process it started (Ray's), every 100 ms.

    Example:
        >>> with PeakRss() as peak:
        ...     run_something()
        >>> peak.gb
    """

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        import psutil

        me = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                total = 0
                for p in [me, *me.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                self.peak = max(self.peak, total)
                time.sleep(0.1)

        threading.Thread(target=sample, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    @property
    def gb(self) -> float:
        return round(self.peak / 2**30, 2)


def per_round(run: Any, name: str) -> list[float]:
    """A run's metric `name` in every round, in round order (from its own log)."""
    rows = run.sql(f"SELECT value FROM metrics WHERE name = '{name}' ORDER BY round")
    return [float(v) for v in rows.column("value").to_pylist()]
