"""Queries on a live run's log.

DuckDB lets one process write a file and no other open it, not even read-only.
So while a run holds its log, the coordinator answers queries itself: a small
server on 127.0.0.1 (ephemeral port) runs each query on a cursor of the writer's
connection. That connection has external access disabled and its configuration
locked, and the server accepts only SELECT statements. It announces itself in
``<log>.live`` (port, pid and a random token, readable by the owner only);
`orchestrator.log.wire.ask` is the client.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import socketserver
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from orchestrator.errors import LogError, QueryRefused
from orchestrator.log.query import interruptible, run_query, scope_to_run
from orchestrator.log.wire import LIVE_TIMEOUT, recv, send
from orchestrator.log.writer import live_file

__all__ = ["LIVE_MAX_RESULT", "LiveServer", "answer", "check_read_only"]

LIVE_MAX_RESULT = 256 * 2**20
"""The largest result (bytes, as Arrow) a live run answers: the run's own process holds it."""


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but SELECT statements (with external access off, they only read)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise LogError(f"Query failed: {str(exc).splitlines()[0]}") from exc
    for st in statements:
        if st.type != duckdb.StatementType.SELECT:
            kind = str(st.type).rsplit(".", 1)[-1]
            raise QueryRefused(
                f"Query refused: {kind} statements cannot run on a live run's log. "
                "Queries on a moot log may only read it: no writes, no files, no settings, no extensions."
            )


def answer(
    cur: duckdb.DuckDBPyConnection, sql: str, run_id: str | None = None, text: bool = False
) -> pa.Table:
    """Answer a user's query on a cursor of a live run's writer connection: SELECT only.

    Args:
        cur: A fresh cursor (its temporary views are its own).
        sql: The query.
        run_id: Scope the tables to this run.
        text: Non-numeric columns as text (see `orchestrator.log.text_table`).
    """
    check_read_only(cur, sql)
    if run_id is not None:
        scope_to_run(cur, run_id)
    return run_query(cur, sql, text=text, max_bytes=LIVE_MAX_RESULT)


class LiveServer:
    """Serves read-only queries on a log while its run holds it.

    Args:
        con: The writer's connection (external access off, configuration locked).
        log: The log's path (the announcement goes beside it).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, log: Path) -> None:
        self.con = con
        self.path = live_file(log)
        self.token = secrets.token_hex(16)
        self._active: set[duckdb.DuckDBPyConnection] = set()  # cursors of queries in flight
        self._lock = threading.Lock()
        self._stopping = False
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._answer(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="moot-live-sql",
            daemon=True,
        )

    def start(self) -> LiveServer:
        self._thread.start()
        port = self._server.server_address[1]
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": port, "pid": os.getpid(), "token": self.token}, f)
        return self

    def _answer(self, sock: socket.socket) -> None:
        try:
            request = json.loads(recv(sock))
            if not secrets.compare_digest(str(request.get("token", "")), self.token):
                raise QueryRefused("Query refused: wrong token for this live run.")
            sql = str(request["sql"])
            run_id = request.get("run_id")
            asked = request.get("timeout")
            limit = LIVE_TIMEOUT if asked is None else min(float(asked), LIVE_TIMEOUT)
            with self._lock:
                if self._stopping:
                    raise LogError("The run is ending; ask again in a moment (the log is then closed).")
                cur = self.con.cursor()
                self._active.add(cur)
            try:
                scope = None if run_id is None else str(run_id)
                table = interruptible(cur, lambda: answer(cur, sql, scope, bool(request.get("text"))), limit)
            finally:
                with self._lock:
                    self._active.discard(cur)
                cur.close()
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            send(sock, b"T" + sink.getvalue().to_pybytes())
        except QueryRefused as exc:
            send(sock, b"R" + str(exc).encode())
        except (duckdb.Error, LogError) as exc:
            send(sock, b"E" + str(exc).encode())
        except (ConnectionError, ValueError, KeyError):
            return

    def stop(self) -> None:
        """Stop answering: queries still running are interrupted, so the writer can close."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            self._stopping = True
            for cur in self._active:
                cur.interrupt()
        deadline = time.monotonic() + 10
        while self._active and time.monotonic() < deadline:
            time.sleep(0.01)
