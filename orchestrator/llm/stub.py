"""A local OpenAI-compatible HTTP server for tests and benchmarks: a STUB, not a model.

It serves ``POST /v1/chat/completions`` on 127.0.0.1 and answers like the
offline stand-in ``moot/simulated`` (so protocols play on), or as a test tells
it to: after a fixed latency, with 429s and Retry-After, never, or with broken
answers. It records each request's arrival time and headers, so tests can check
rate limits and keys on the wire.

    with StubServer(latency=0.2) as stub:
        launch(..., llm=LLMConfig(model="openai/stub", api_base=stub.url))
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from orchestrator.llm.offline import answer

__all__ = ["Request", "StubServer"]

BROKEN: dict[str, Callable[[dict[str, Any]], str]] = {
    "not_json": lambda schema: "Sure! I think I'd go up, probably.",
    "wrong_schema": lambda schema: json.dumps({"verdict": "maybe", "confidence": "high"}),
    "truncated": lambda schema: '{"action": "UP", "message": "I am going up because the',
    "huge": lambda schema: "x" * 1_000_000,
}
"""Broken answers a stub can give: ``mode="not_json"`` and so on."""


@dataclass(frozen=True)
class Request:
    """One request the stub received."""

    at: float
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StubServer:
    """See the module docstring.

    Attributes:
        latency: Seconds before each answer.
        mode: ``ok`` or a broken answer (`BROKEN`).
        rate_limited: This many first requests get 429 with ``Retry-After: retry_after``.
        retry_after: The Retry-After value sent with a 429 (None: no header).
        hang: Never answer (until the server stops).
        reply: Overrides the answer: ``reply(request body) -> content``.
        error_status: Answer every request with this HTTP status and an OpenAI-style error
            body (0: answer normally).
        echo_auth: Put the request's Authorization header into that error's text, as some
            proxies and self-hosted servers do.
    """

    latency: float = 0.0
    mode: str = "ok"
    rate_limited: int = 0
    retry_after: str | None = "1"
    hang: bool = False
    reply: Callable[[dict[str, Any]], str] | None = None
    error_status: int = 0
    echo_auth: bool = False
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        if self.mode != "ok" and self.mode not in BROKEN:
            raise ValueError(f"Unknown stub mode {self.mode!r}; use 'ok' or one of {', '.join(BROKEN)}.")
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """The ``api_base`` to give litellm (``/v1`` included)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def served(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> StubServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="moot-llm-stub", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("The LLM stub server did not start within 10 s.")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.run(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=4096)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr,no-untyped-call]
        ready.set()
        await self._stop.wait()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        with self._lock:
            self.requests.append(Request(time.monotonic(), dict(request.headers), body))
            n = len(self.requests)
        if self.hang:
            assert self._stop is not None
            await self._stop.wait()
            return web.Response(status=503)
        if n <= self.rate_limited:
            headers = {"retry-after": self.retry_after} if self.retry_after is not None else {}
            error = {
                "error": {"message": "Rate limit reached (stub)", "type": "rate_limit_error", "code": "429"}
            }
            return web.json_response(error, status=429, headers=headers)
        if self.error_status:
            said = "Incorrect API key provided: " + request.headers.get("Authorization", "")
            message = said if self.echo_auth else f"The stub fails with {self.error_status}"
            kind = "server_error" if self.error_status >= 500 else "invalid_request_error"
            error = {"error": {"message": message, "type": kind}}
            return web.json_response(error, status=self.error_status)
        if self.latency:
            await asyncio.sleep(self.latency)
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
        if self.reply is not None:
            content = self.reply(body)
        elif self.mode in BROKEN:
            content = BROKEN[self.mode](schema)
        else:
            content = answer("simulated", body["messages"], body)
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        completion_tokens = len(content.split())
        return web.json_response(
            {
                "id": f"stub-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "length" if self.mode == "truncated" else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


def main() -> None:
    """``python -m orchestrator.llm.stub --port 8000 --latency 0.2``: serve until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description="A local OpenAI-compatible stub server (not a model).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--mode", default="ok", choices=["ok", *BROKEN])
    args = parser.parse_args()
    with StubServer(latency=args.latency, mode=args.mode, port=args.port) as stub:
        print(stub.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
