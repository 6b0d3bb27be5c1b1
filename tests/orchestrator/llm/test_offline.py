"""litellm set up offline: no network at import or on offline calls; the moot provider's exact token counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SPY = r"""
import json, socket
seen = []
real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
def getaddrinfo(host, *a, **k):
    seen.append(("dns", str(host)))
    return real_getaddrinfo(host, *a, **k)
def connect(self, address):
    seen.append(("connect", str(address)))
    return real_connect(self, address)
socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect

import asyncio
from orchestrator.llm.gateway import _import_litellm
litellm = _import_litellm({})
msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two  three"}]
r = asyncio.run(litellm.acompletion(model="moot/echo", messages=msgs, num_retries=0, max_retries=0))
print(json.dumps({"seen": seen, "text": r.choices[0].message.content, "usage": [r.usage.prompt_tokens,
      r.usage.completion_tokens], "cost": r._hidden_params.get("response_cost")}))
"""


def test_import_and_offline_calls_touch_no_network() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", SPY], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seen"] == []
    assert result["text"] == "one two  three"
    assert result["usage"] == [5, 3]  # whitespace words: "be brief" + "one two three"; the answer
    assert result["cost"] == 0.0
    assert "Give Feedback" not in out.stdout + out.stderr


def test_the_pth_check_passes_here_and_catches_a_planted_hook(tmp_path: Path) -> None:
    check = ROOT / ".ci" / "check_pth.py"
    ok = subprocess.run([sys.executable, str(check)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    site = tmp_path / "site"
    site.mkdir()
    (site / "litellm_init.pth").write_text("import os; os.system('steal')\n")
    bad = subprocess.run([sys.executable, str(check), str(site)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "unexpected .pth file:" in bad.stderr and "litellm_init.pth" in bad.stderr
