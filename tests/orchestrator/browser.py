"""A real browser for tests: Debian's headless Chromium, driven over the DevTools protocol.

`chromium()` finds it or installs it (``apt-get install chromium``, as the test set-up may,
being root on a Debian machine), else skips the test with the reason. `look(page)` opens a
local file with every host name unresolvable (no network), and returns what the page
logged as errors, every URL it asked for, and one screenshot per plot.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def chromium() -> str:
    """The path of Debian's chromium, installing it if need be; skips the test if impossible."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            "chromium is not installed, and installing it needs root and apt-get (apt-get install chromium)"
        )
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # a fresh machine's package lists may be empty
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=600)
        done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not shutil.which("chromium"):
        pytest.skip(f"apt-get install chromium failed: {done.stderr[-500:]}")
    return str(shutil.which("chromium"))


@dataclass
class Seen:
    """What the browser saw of a page."""

    errors: list[str]
    urls: list[str]
    plots: list[Any]  # PIL images, one per `figure.plot` element's picture


_PLOTS = """JSON.stringify(Array.from(document.querySelectorAll('figure.plot svg, figure.plot .replay img'))
  .filter(e => e.getBoundingClientRect().height > 0)
  .map(e => { const r = e.getBoundingClientRect();
              return [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]; }))"""


async def _look(binary: str, page: Path) -> Seen:
    import aiohttp
    from PIL import Image

    profile = tempfile.mkdtemp()
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--remote-debugging-port=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = found.group(1) if found else None
            assert line, "chromium exited before listening"
        async with aiohttp.ClientSession() as http:
            targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(ws_url, max_msg_size=0) as ws:
                return await _drive(ws, page, Image)
    finally:
        proc.kill()
        await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _drive(ws: Any, page: Path, image: Any) -> Seen:
    ids = iter(range(1, 10**6))
    errors: list[str] = []
    urls: list[str] = []
    events: list[dict[str, Any]] = []

    async def call(method: str, **params: Any) -> dict[str, Any]:
        mine = next(ids)
        await ws.send_json({"id": mine, "method": method, "params": params})
        while True:
            msg = json.loads((await ws.receive()).data)
            if msg.get("id") == mine:
                assert "error" not in msg, msg
                return dict(msg.get("result", {}))
            events.append(msg)

    def note() -> None:
        for e in events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                errors.append(json.dumps(p["exceptionDetails"])[:300])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(str(p.get("args"))[:300])
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(p["entry"].get("text", "")[:300])
            elif m == "Network.requestWillBeSent":
                urls.append(p["request"]["url"][:80])
        events.clear()

    for domain in ("Page", "Runtime", "Log", "Network"):
        await call(f"{domain}.enable")
    await call(
        "Emulation.setDeviceMetricsOverride", width=1200, height=900, deviceScaleFactor=1, mobile=False
    )
    await call("Page.navigate", url=page.resolve().as_uri())
    while not any(e.get("method") == "Page.loadEventFired" for e in events):
        events.append(json.loads((await asyncio.wait_for(ws.receive(), 60)).data))
    await asyncio.sleep(0.5)
    rects = json.loads(
        (await call("Runtime.evaluate", expression=_PLOTS, returnByValue=True))["result"]["value"]
    )
    plots = []
    for x, y, w, h in rects:
        shot = await call(
            "Page.captureScreenshot",
            format="png",
            clip={"x": x, "y": y, "width": w, "height": h, "scale": 1},
            captureBeyondViewport=True,
        )
        plots.append(image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("L"))
    note()
    return Seen(errors, urls, plots)


def look(page: Path) -> Seen:
    """Open `page` in headless Chromium, offline; see `Seen`."""
    return asyncio.run(_look(chromium(), page))


def drawn(plot: Any) -> bool:
    """Whether a plot's picture has something drawn: more than 2% of it not near-white."""
    pixels = list(plot.getdata())
    return sum(v < 235 for v in pixels) > 0.02 * len(pixels)
