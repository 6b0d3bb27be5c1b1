"""What a local run exposes: Ray's processes listen on every interface, so the token is what
guards them. A client without the run's token is refused by the run's GCS; one with it joins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # it starts a Ray instance of its own

SCENARIO = """
import os, subprocess, sys
import ray
from orchestrator.ray_runtime import ensure_ray

ensure_ray(None)  # what `moot run` does without --address: a fresh local instance
gcs = ray.get_runtime_context().gcs_address
client = '''
import ray, sys
try:
    ray.init(address=sys.argv[1], log_to_driver=False)
    print("joined")
except Exception as exc:
    print("refused:", type(exc).__name__)
'''
base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
# A wrong token: the GCS answers Unauthenticated at once (the client then retries for about 20 s
# before it gives up: it is stopped once the GCS has said no, and must never have joined).
wrong = subprocess.Popen([sys.executable, "-c", client, gcs], text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env={**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64})
answer = ""
for line in wrong.stderr:
    if "Unauthenticated" in line and "InvalidAuthToken" in line:
        answer = "refused by the GCS: Unauthenticated (InvalidAuthToken)"
        break
wrong.kill()
said, _ = wrong.communicate(timeout=60)
print("wrong token ->", answer if "joined" not in said else "joined")
out = subprocess.run([sys.executable, "-c", client, gcs], env={**base, "RAY_AUTH_MODE": "token"},
                     capture_output=True, text=True, timeout=120)
print("the run's token ->", out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "nothing")
print("mode:", os.environ.get("RAY_AUTH_MODE"))
ray.shutdown()
"""


def test_a_client_without_the_runs_token_is_refused_by_its_gcs(tmp_path: Path) -> None:
    # As a user's shell has it: no PYTEST_* (Ray changes its behaviour under pytest), no address.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "MOOT_ADDRESS", "RAY_AUTH_MODE") and not k.startswith("PYTEST_")
    }
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", SCENARIO], env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [x for x in out.stdout.splitlines() if "->" in x or x.startswith("mode:")]
    assert lines == [
        "wrong token -> refused by the GCS: Unauthenticated (InvalidAuthToken)",
        "the run's token -> joined",
        "mode: token",
    ], out.stdout
