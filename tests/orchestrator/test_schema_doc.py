"""The schema document (orchestrator/SCHEMA.md) and the real log stay in step."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from orchestrator.log import MACROS, TABLES, VIEWS, LogWriter
from orchestrator.log.segments import SEGMENTED

DOC = Path(__file__).resolve().parents[2] / "orchestrator" / "SCHEMA.md"


def documented() -> tuple[dict[tuple[str, str], tuple[str, str]], set[str]]:
    """{(table, column): (type, meaning)} and the names of documented views/macros."""
    text = DOC.read_text()
    body = text[text.index("<!-- schema:start") : text.index("<!-- schema:end -->")]
    columns: dict[tuple[str, str], tuple[str, str]] = {}
    named: set[str] = set()
    table = None
    for line in body.splitlines():
        head = re.match(r"#### `(\w+)`", line)
        if head:
            table = head.group(1)
        elif line.startswith("#### "):
            table = None
        row = re.match(r"\| `([^`]+)` \| (.+?) \|(?: (.+) \|)?$", line)
        if row and table:
            columns[(table, row.group(1))] = (row.group(2), row.group(3))
        elif row:
            named.add(row.group(1).split("(")[0])
    return columns, named


def test_every_column_of_the_log_is_documented_with_its_type(tmp_path: Path) -> None:
    LogWriter(tmp_path / "fresh.duckdb").close()
    con = duckdb.connect(str(tmp_path / "fresh.duckdb"), read_only=True)
    real = {
        (t, c): (typ, comment)
        for t, c, typ, comment in con.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE NOT internal AND (table_name IN (SELECT table_name FROM duckdb_tables()) "
            "OR table_name IN (SELECT unnest(?))) AND NOT starts_with(table_name, '_')",
            [list(SEGMENTED)],
        ).fetchall()
    }
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    macros = {
        r[0]
        for r in con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_type = 'table_macro' AND NOT internal"
        ).fetchall()
    }
    con.close()
    doc_columns, doc_named = documented()
    assert set(doc_columns) == set(real), set(doc_columns) ^ set(real)
    for key, (typ, comment) in real.items():
        doc_type, meaning = doc_columns[key]
        assert meaning and meaning == comment, key
        assert doc_type in (typ, "message_kind") or typ.startswith("ENUM"), (key, doc_type, typ)
    assert (
        views - set(SEGMENTED) <= doc_named
        and {m.split("(")[0] for m in MACROS} <= doc_named <= views | macros
    )


def test_the_declared_schema_has_a_meaning_for_every_column() -> None:
    for t in TABLES:
        assert t.doc
        for c in t.columns:
            assert c.doc.endswith("."), (t.name, c.name)
    assert all(doc for doc, _ in VIEWS.values())
