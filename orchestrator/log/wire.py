"""How a process asks the live run that holds a log (the run's `orchestrator.live.LiveServer`
answers): length-prefixed frames over 127.0.0.1, the token from ``<log>.live``, Arrow IPC back."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import pyarrow as pa

from orchestrator.errors import LogError, QueryRefused
from orchestrator.log.writer import live_file

__all__ = ["LIVE_TIMEOUT", "ask", "recv", "send"]

LIVE_TIMEOUT = 120.0
"""Seconds a query on a live run may take at most: it runs inside the run's process, so a
runaway must not hold it (a client may ask for less)."""


def send(sock: socket.socket, data: bytes) -> None:
    sock.sendall(struct.pack("!Q", len(data)) + data)


def recv(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        return bytes(buf)

    (n,) = struct.unpack("!Q", exactly(8))
    return exactly(n)


def ask(
    log: Path, sql: str, *, run_id: str | None = None, text: bool = False, timeout: float | None = None
) -> pa.Table | None:
    """Ask the live run holding `log`; None if no live run announces itself.

    The run stops the query after `timeout` seconds (at most `LIVE_TIMEOUT`); Ctrl-C here
    closes the connection, which the run does not wait on.
    """
    path = live_file(log)
    try:
        info = json.loads(path.read_text())
        port, token = int(info["port"]), str(info["token"])
    except (OSError, ValueError, KeyError):
        return None
    try:
        wait = (LIVE_TIMEOUT if timeout is None else min(timeout, LIVE_TIMEOUT)) + 30
        with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
            request = {"token": token, "sql": sql, "run_id": run_id, "text": text, "timeout": timeout}
            send(sock, json.dumps(request).encode())
            reply = recv(sock)
    except OSError:
        return None  # the run ended meanwhile
    status, body = reply[:1], reply[1:]
    if status == b"T":
        return pa.ipc.open_stream(body).read_all()
    if status == b"R":
        raise QueryRefused(body.decode())
    first = body.decode()
    raise LogError(first if first.startswith(("Query failed", "Query stopped")) else f"Query failed: {first}")
