"""Writing a benchmark's results: JSON for machines, a Markdown table for people."""

from __future__ import annotations

import json
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
