"""The package boundary and the public exports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_agents_and_protocols_import_without_ray() -> None:
    code = (
        "import sys, agents, protocols, orchestrator, orchestrator.errors\n"
        "from protocols import Gossip\n"
        "Gossip().build(200, 0)\n"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["agents", "protocols", "orchestrator"])
def test_all_is_sorted_and_complete(name: str) -> None:
    mod = importlib.import_module(name)
    assert list(mod.__all__) == sorted(mod.__all__)
    for item in mod.__all__:
        assert getattr(mod, item) is not None
    public = {k for k, v in vars(mod).items() if not k.startswith("_") and not isinstance(v, type(sys))}
    public -= {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    assert public <= set(mod.__all__)
