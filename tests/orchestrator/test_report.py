"""`moot report`: one HTML file per log that opens in a real browser (headless Chromium) with no
network and no console error, every plot drawn, for each protocol, an LLM run and a sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from orchestrator.analysis.report import report
from protocols import Gossip
from protocols.registry import get_protocol
from tests.conftest import ROOT
from tests.orchestrator.browser import drawn, look

MOOT = str(Path(sys.executable).with_name("moot"))

CASES: dict[str, tuple[int, int, dict[str, Any], str]] = {
    "gossip": (300, 8, {}, "trajectories"),
    "swarm_grid": (20, 6, {"size": [12, 12]}, "replay"),
    "social_feed": (60, 6, {}, "feed: activity and cascades"),
    "debate": (30, 4, {}, "accuracy and conformity"),
}


def _check(page: Path, plots_at_least: int) -> None:
    assert page.stat().st_size < 5_000_000
    seen = look(page)
    assert seen.errors == []
    assert all(u.startswith(("file:", "data:")) for u in seen.urls), seen.urls  # nothing from a network
    assert len(seen.plots) >= plots_at_least
    assert all(drawn(p) for p in seen.plots)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_report_of_each_protocol_opens_offline_with_every_plot_drawn(name: str, tmp_path: Path) -> None:
    agents, rounds, options, special = CASES[name]
    proto = get_protocol(name)(**options)
    log = tmp_path / f"{name}.duckdb"
    pop = proto.default_population(agents)
    launch(pop, proto, rounds=rounds, seed=3, log=log, runtime="local", stop="never", state_every=1)
    page = report(log, tmp_path / "report.html")
    text = page.read_text()
    assert "every metric over rounds" in text and "Diagnostics of" in text
    assert special in text  # the protocol's own figure
    _check(page, 2)


def test_the_report_of_an_llm_run_plots_its_cost_tokens_and_latency(tmp_path: Path) -> None:
    from tests.orchestrator.helpers import llm_gossip

    log = tmp_path / "llm.duckdb"
    llm_gossip(log)
    done = subprocess.run(
        [MOOT, "report", str(log), "--out", str(tmp_path / "r.html")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "no network needed" in done.stdout
    assert "LLM calls: cost, tokens and latency per round" in (tmp_path / "r.html").read_text()
    _check(tmp_path / "r.html", 3)


def test_a_sweeps_report_overlays_one_curve_per_parameter_value(tmp_path: Path) -> None:
    log = tmp_path / "sweep.duckdb"
    for fanout in (1, 2, 4):
        launch(
            Population.of(OpinionAgent, 200, opinion=Uniform()),
            Gossip(fanout=fanout),
            rounds=6,
            seed=1,
            log=log,
            runtime="local",
            params={"fanout": fanout, "arm": "same"},
        )
    page = report(log, tmp_path / "sweep.html")
    text = page.read_text()
    assert "(runs overlaid)" in text
    for fanout in (1, 2, 4):  # the legend names each point by the parameter that differs
        assert f"fanout={fanout}" in text
    assert "arm=" not in text
    _check(page, 2)
