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
for name, extra in (
    ("wrong token", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}),
    ("the run's token", {"RAY_AUTH_MODE": "token"}),
):
    out = subprocess.run([sys.executable, "-c", client, gcs], env={**base, **extra},
                         capture_output=True, text=True, timeout=120)
    said = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "nothing"
    print(name, "->", said, "(InvalidAuthToken)" if "InvalidAuthToken" in out.stderr + out.stdout else "")
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
        "wrong token -> refused: ConnectionError (InvalidAuthToken)",
        "the run's token -> joined ",
        "mode: token",
    ], out.stdout
