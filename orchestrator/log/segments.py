"""Rows written where they are made: each host writes its own ``agents``, ``messages`` and
``states`` rows as Parquet segments beside the log, and the log's views read them.

Layout, beside ``run.duckdb``::

    run.duckdb.parts/
      messages/run_id=<run>/r00000003-h00001.parquet   (round 3, host 1)
      messages/run_id=<run>/r00000003-h00001-world.parquet   (what the world delivered there)
      states/run_id=<run>/r-0000001-h00000.parquet      (round -1: the initial state)
      agents/run_id=<run>/r-0000001-h00000.parquet
      <table>/run_id=_/empty.parquet                     (the schema, so a view always binds)

A segment is written whole to ``<name>.parquet.tmp`` and then renamed: a host killed while
writing leaves a ``.tmp`` file that no view reads (the ``*.parquet`` glob skips it), and the
driver deletes it when it closes the run. Each segment's table, round, host, rows, bytes and
CRC-32 go to the ``segments`` table (the manifest).

The views find the directory from the database they are opened in: DuckDB's default
``temp_directory`` is the database's own path plus ``.tmp``, so
``regexp_replace(current_setting('temp_directory'), '\\.tmp$', '') || '.parts'`` is the
parts directory of whatever file the client opened, from any working directory, after
the file and its ``.parts`` folder have been moved together. Why this and not DuckLake or a
compaction into the file: see DESIGN notes in orchestrator/log/README.md.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from orchestrator.errors import ConfigError, LogError
from orchestrator.log.schema import TABLES, segment_schema

__all__ = [
    "SEGMENTED",
    "Segment",
    "SegmentSink",
    "check_store",
    "compact_run",
    "gather",
    "has_segments",
    "link_run",
    "move_run",
    "object_store",
    "parts_dir",
    "prune",
    "recover",
    "write_schema_files",
]

SEGMENTED = tuple(t.name for t in TABLES if t.segmented)
"""Tables whose rows the hosts write as segments: agents, messages, states (the rest are small
and written by the driver)."""

NODE_PARTS = "MOOT_NODE_PARTS"
"""Set on a node without the log's storage: its hosts write there, and the driver gathers."""

_NAME = re.compile(r"^r(-?\d+)-h\d+(?:-\w+)?\.parquet$")
"""A finished segment's file name; its group is the round."""

_SCHEMAS = {t.name: segment_schema(t) for t in TABLES if t.segmented}
"""Column order and Arrow type of each segment file (run_id is its folder's name)."""


def run_folder(run_id: str) -> str:
    """A run's folder under each table: ``run_id=<id>``, URL-encoded as DuckDB's hive reader
    decodes it (a sweep's run id holds ``=``)."""
    return "run_id=" + quote(run_id, safe="")


def parts_dir(log: Path) -> Path:
    """Where the segments of the log `log` live: ``<log>.parts`` beside it."""
    return log.with_name(log.name + ".parts")


def has_segments(parts: Path) -> bool:
    """Whether any run has segments under `parts` (the schema files do not count)."""
    return any(
        f.suffix == ".parquet"
        for t in SEGMENTED
        if (parts / t).is_dir()
        for run in (parts / t).iterdir()
        if run.is_dir() and run.name != "run_id=_"
        for f in run.iterdir()
    )


def write_schema_files(parts: Path) -> None:
    """An empty segment per table, so that the views bind before any run wrote one."""
    for table, schema in _SCHEMAS.items():
        folder = parts / table / "run_id=_"
        target = folder / "empty.parquet"
        if target.exists() and pq.read_schema(target).equals(schema):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        _atomic(target, _encode(schema.empty_table()))


_STATISTICS = ("round", "sender", "agent")
"""Columns with min/max statistics, which let a query skip row groups (by round, by agent)."""
_CONSTANT = ("round", "host")
"""Integer columns with one value a segment: a dictionary of one, run-length encoded."""
_IDS = ("sender", "seq", "receiver", "agent")
"""Integer id columns: delta-encoded (sorted senders and agents shrink to almost nothing)."""


def _encode(rows: pa.Table) -> pa.Buffer:
    """Parquet bytes, written for speed and size: dictionaries for strings and constant columns
    only (pyarrow's default tries one for every column, then gives up on ids and values), ids
    delta-encoded, numbers left uncompressed (random bits do not compress), statistics only
    where queries filter. On 1.7M message rows here: 71 ms and 18 MB against 98 ms and 27 MB
    with the defaults (orchestrator/log/README.md)."""
    names = rows.column_names
    dictionary = [
        f.name
        for f in rows.schema
        if pa.types.is_string(f.type) or pa.types.is_dictionary(f.type) or f.name in _CONSTANT
    ]
    ids = [c for c in _IDS if c in names]
    plain = set(ids) | {f.name for f in rows.schema if pa.types.is_floating(f.type)}
    sink = pa.BufferOutputStream()
    pq.write_table(
        rows,
        sink,
        compression={c: "none" if c in plain else "snappy" for c in names},
        use_dictionary=dictionary,
        column_encoding=dict.fromkeys(ids, "DELTA_BINARY_PACKED"),
        write_statistics=[c for c in _STATISTICS if c in names],
    )
    return sink.getvalue()


def _atomic(target: Path, data: pa.Buffer) -> None:
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(memoryview(data))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log = target.parents[2]
        raise disk_error(log.with_name(log.name.removesuffix(".parts")), exc.errno, exc.strerror) from exc


def disk_error(log: Path, errno_: int | None, text: str | None) -> LogError:
    """The error for a log (its file or its segments) that cannot be written: full, too big, other."""
    if errno_ == errno.ENOSPC:
        return LogError(
            f"The disk holding {str(log)!r} is full; rows already appended are kept. "
            "Free space, or pass a log path on another disk."
        )
    if errno_ == errno.EFBIG:  # a file-size limit (ulimit -f, a quota)
        return LogError(
            f"The log {str(log)!r} reached the largest file this process may write (ulimit -f or a "
            "quota); rows already appended are kept. Raise the limit, or log less (--messages sample:0.1)."
        )
    return LogError(f"Cannot write the log {str(log)!r}: {text}; rows already appended are kept.")


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment file, as the manifest (``segments``) records it."""

    table: str
    round: int
    host: int
    file: str
    """Path under the parts directory."""
    rows: int
    bytes: int
    crc32: int


_SECRET_QUERY = re.compile(r"(?i)(secret|key|token|password|credential|session)")
"""Query options of a store URI that would carry a credential into the log's config."""

_STORES: dict[str, tuple[pafs.FileSystem, str]] = {}
"""Each process's open object stores, by URI (an S3 client is not free to make)."""


def object_store(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and base path of an object-store URI (``s3://bucket/prefix``,
    ``gs://...``, ``abfs://...``, ``hdfs://...``), opened once a process.

    Raises:
        ConfigError: A path rather than a URI, a credential written into the URI, or a URI
            pyarrow cannot open; each names the value and the fix.
    """
    if uri in _STORES:
        return _STORES[uri]
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        raise ConfigError(
            f"--segments-uri {uri!r} is a path, not an object-store URI. For a folder every node "
            "mounts, put the log itself there (--log /shared/study.duckdb); for an object store, "
            "give s3://bucket/prefix (or gs://, abfs://, hdfs://)."
        )
    if parts.username or parts.password or _SECRET_QUERY.search(parts.query):
        raise ConfigError(
            f"--segments-uri for {parts.scheme}://{parts.hostname}{parts.path} carries a credential, which "
            "would be recorded with the run. Give credentials the store's usual way on every node "
            "(for S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, or an instance role)."
        )
    try:
        fs, base = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise ConfigError(f"Cannot open --segments-uri {uri!r}: {exc}") from exc
    _STORES[uri] = (fs, base.rstrip("/"))
    return _STORES[uri]


def check_store(uri: str, parts: Path) -> None:
    """Write and delete one small object under `uri`, so that a wrong bucket, endpoint or
    credential is refused before the run starts rather than by the first host."""
    fs, base = object_store(uri)
    probe = f"{base}/{parts.name}/.moot-probe"
    try:
        with fs.open_output_stream(probe) as out:
            out.write(b"moot")
        fs.delete_file(probe)
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(
            f"Cannot write to --segments-uri {uri!r}: {exc}. Check the bucket, the endpoint and the "
            "credentials this process and every node have."
        ) from exc


@dataclass(frozen=True, slots=True)
class SegmentSink:
    """Where a host writes its segments (shipped to every host in its `HostSpec`).

    Args:
        parts: The parts directory (absolute, as the driver sees it).
        run_id: The run.
        uri: An object store every node reaches (`object_store`): hosts write there, and the
            driver copies the run's segments beside the log once the rounds are over. Empty:
            beside the log (or ``MOOT_NODE_PARTS``).
    """

    parts: str
    run_id: str
    uri: str = ""

    def root(self) -> Path:
        """Where this process writes: the log's folder, or ``MOOT_NODE_PARTS`` when set on a
        node that does not share the log's storage (the driver then gathers the segments)."""
        local = os.environ.get(NODE_PARTS)
        return Path(local) / Path(self.parts).name if local else Path(self.parts)

    def shared(self) -> bool:
        """Whether this process writes beside the log (else on its node, ``MOOT_NODE_PARTS``,
        or in an object store)."""
        return not self.uri and not os.environ.get(NODE_PARTS)

    def stored(self, file: str) -> str:
        """A segment's path in the object store."""
        return f"{object_store(self.uri)[1]}/{Path(self.parts).name}/{file}"

    def read(self, files: list[str]) -> list[bytes]:
        """The bytes of segments this process wrote, or that hosts wrote to the object store."""
        if not self.uri:
            return [(self.root() / f).read_bytes() for f in files]
        fs = object_store(self.uri)[0]
        with ThreadPoolExecutor(8) as pool:  # an object store answers many requests at once
            return list(pool.map(lambda f: _read_object(fs, self.stored(f)), files))

    def forget(self) -> None:
        """Delete the run's segments from the object store (once they are beside the log;
        pyarrow leaves an empty folder marker, ``name/``, where a folder was)."""
        fs, base = object_store(self.uri)
        for table in SEGMENTED:
            with contextlib.suppress(pa.ArrowException, OSError):
                fs.delete_dir(f"{base}/{Path(self.parts).name}/{table}/{run_folder(self.run_id)}")

    def write(self, table: str, round: int, host: int, rows: pa.Table, tag: str = "") -> Segment | None:
        """Write `rows` of `table` as one segment, atomically; None when there are none."""
        if rows.num_rows == 0:
            return None
        schema = _SCHEMAS[table]
        n = rows.num_rows
        columns = [
            _column(rows.column(f.name), f.type) if f.name in rows.column_names else pa.nulls(n, f.type)
            for f in schema
        ]
        data = _encode(pa.Table.from_arrays(columns, names=schema.names))
        name = f"r{round:08d}-h{host:05d}{'-' + tag if tag else ''}.parquet"
        rel = f"{table}/{run_folder(self.run_id)}/{name}"
        if self.uri:  # an object appears whole when its upload completes, or not at all
            _put_object(self.uri, self.stored(rel), data)
        else:
            target = self.root() / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic(target, data)
        return Segment(table, round, host, rel, n, data.size, zlib.crc32(memoryview(data)))


def _put_object(uri: str, path: str, data: pa.Buffer) -> None:
    try:
        with object_store(uri)[0].open_output_stream(path) as out:
            out.write(data)
    except (pa.ArrowException, OSError) as exc:
        raise LogError(
            f"Cannot write segment {path} to {uri!r}: {exc}; rows already appended are kept."
        ) from exc


def _read_object(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return bytes(f.read())


def _column(col: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    """A column as the segment schema types it; strings may stay dictionary-encoded (Parquet
    stores both alike, and decoding a million kinds would cost a copy)."""
    if col.type == typ or (pa.types.is_dictionary(col.type) and col.type.value_type == typ):
        return col
    return col.cast(typ)


def missing(parts: Path, listed: list[tuple[int, str, int, int]]) -> dict[int, list[tuple[str, int, int]]]:
    """Per host, the listed segments (host, file, bytes, crc32) the driver cannot see."""
    out: dict[int, list[tuple[str, int, int]]] = {}
    for host, file, size, crc in listed:
        p = parts / file
        if not p.exists() or p.stat().st_size != size:
            out.setdefault(host, []).append((file, size, crc))
    return out


def store(parts: Path, file: str, data: bytes, size: int, crc: int) -> None:
    """Write a gathered segment beside the log, checked against its manifest row."""
    if len(data) != size or zlib.crc32(data) != crc:
        raise LogError(
            f"Segment {file} came back with {len(data)} bytes and CRC-32 {zlib.crc32(data)}, not the "
            f"{size} bytes and {crc} its host recorded; its node's disk may be failing. Rerun the study."
        )
    target = parts / file
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic(target, pa.py_buffer(data))


GATHER = 16
"""Segments gathered at a time (`gather`): a big run's segments never sit in memory at once."""


def gather(
    con: duckdb.DuckDBPyConnection,
    parts: Path,
    run_id: str,
    read: Callable[[int, list[str]], list[bytes]],
) -> int:
    """Copy beside the log the run's listed segments that are not there, `GATHER` at a time,
    each checked against its manifest row; returns how many.

    Args:
        read: The bytes of some of one host's segments: ``read(host, files)``.
    """
    listed = con.execute(
        "SELECT host, file, bytes, crc32 FROM segments WHERE run_id = ?", [run_id]
    ).fetchall()
    wanted = missing(parts, [(int(h), str(f), int(b), int(c)) for h, f, b, c in listed])
    for h, files in wanted.items():
        for a in range(0, len(files), GATHER):
            batch = files[a : a + GATHER]
            for (file, size, crc), data in zip(batch, read(h, [f for f, _, _ in batch])):
                store(parts, file, data, size, crc)
    return sum(len(files) for files in wanted.values())


def prune(parts: Path, run_id: str, last_round: int, states_too: bool = False) -> int:
    """Delete the run's segments of rounds after `last_round` and any unfinished (``.tmp``) one.

    A run that failed or crashed keeps whole rounds only: a round is in the log when its
    metrics are, and a host that wrote its part of a later round before another failed
    leaves nothing behind. With `states_too`, the states of `last_round` go as well (logged
    only because the run ended there; a resumed run logs them where its schedule says).
    Returns the files deleted.
    """
    gone = 0
    for table in SEGMENTED:
        folder = parts / table / run_folder(run_id)
        cut = last_round - 1 if states_too and table == "states" else last_round
        for f in list(folder.iterdir()) if folder.is_dir() else ():
            named = _NAME.match(f.name)
            if f.name.endswith(".tmp") or (named is not None and int(named.group(1)) > cut):
                f.unlink(missing_ok=True)
                gone += 1
    return gone


def link_run(parts: Path, src: str, dst: str, last_round: int) -> None:
    """Give run `dst` the segments of run `src` up to `last_round` (a fork's history): hard links,
    so no byte is copied (a copy where the filesystem has no links)."""
    for table in SEGMENTED:
        folder, target = parts / table / run_folder(src), parts / table / run_folder(dst)
        for f in sorted(folder.iterdir()) if folder.is_dir() else ():
            named = _NAME.match(f.name)
            if named is None or int(named.group(1)) > last_round:
                continue
            target.mkdir(parents=True, exist_ok=True)
            try:
                os.link(f, target / f.name)
            except OSError:
                shutil.copy2(f, target / f.name)


def move_run(src: Path, dst: Path, run_id: str) -> None:
    """Move one run's segments and checkpoints from one parts directory to another (a sweep's
    merge), replacing whatever `dst` held for that run (a point run again)."""
    for table in (*SEGMENTED, "checkpoints"):
        folder, target = src / table / run_folder(run_id), dst / table / run_folder(run_id)
        shutil.rmtree(target, ignore_errors=True)
        if folder.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(target))


_COMPACTING = "_compacting"


def compact_run(con: duckdb.DuckDBPyConnection, parts: Path, run_id: str) -> int:
    """Move one run's segment rows into the file's own tables (``_agents``, ``_messages``,
    ``_states``) and delete its segments; returns the rows moved.

    Crash-safe: the run's folders are first renamed under ``_compacting`` (no view reads them
    there), the rows are inserted and the run's manifest rows deleted in one transaction, and
    only then are the files deleted. `recover` finishes or undoes a compaction that a crash cut.

    Args:
        con: The log's writer connection (allowed to read `parts`).
    """
    staged = parts / _COMPACTING
    moved = 0
    for table in SEGMENTED:
        src = parts / table / run_folder(run_id)
        if src.is_dir():
            (staged / table).mkdir(parents=True, exist_ok=True)
            os.replace(src, staged / table / run_folder(run_id))
    con.execute("BEGIN")
    try:
        for table in SEGMENTED:
            folder = staged / table / run_folder(run_id)
            files = sorted(str(f) for f in folder.glob("*.parquet")) if folder.is_dir() else []
            if not files:
                continue
            cols = ", ".join(f'"{c}"' for c in _SCHEMAS[table].names)
            listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            moved += int(
                con.execute(
                    f"INSERT INTO _{table} (run_id, {cols}) SELECT ?, {cols} FROM read_parquet({listed})",
                    [run_id],
                ).fetchall()[0][0]
            )
        con.execute("DELETE FROM segments WHERE run_id = ?", [run_id])
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # gone already when a full disk aborted it
            con.execute("ROLLBACK")
        _unstage(parts, run_id)
        raise
    for table in SEGMENTED:
        shutil.rmtree(staged / table / run_folder(run_id), ignore_errors=True)
    return moved


def _unstage(parts: Path, run_id: str) -> None:
    for table in SEGMENTED:
        folder = parts / _COMPACTING / table / run_folder(run_id)
        if folder.is_dir():
            os.replace(folder, parts / table / run_folder(run_id))


def recover(con: duckdb.DuckDBPyConnection, parts: Path) -> None:
    """Finish a compaction a crash cut: its rows are in the file when its manifest rows are
    gone (then the staged files go), else the staged files go back where the views read them."""
    staged = parts / _COMPACTING
    if not staged.is_dir():
        return
    runs = {unquote(f.name.split("=", 1)[1]) for t in staged.iterdir() if t.is_dir() for f in t.iterdir()}
    for run_id in runs:
        listed = con.execute("SELECT count(*) FROM segments WHERE run_id = ?", [run_id]).fetchall()[0][0]
        if listed:
            _unstage(parts, run_id)
        else:
            for table in SEGMENTED:
                shutil.rmtree(staged / table / run_folder(run_id), ignore_errors=True)
    shutil.rmtree(staged, ignore_errors=True)
