"""Distributed black-box consensus optimisation: the test functions, the sphere's known optimum,
consensus against isolation on Rastrigin, the language-model guide through the gateway, the
command line.

Oracles: the optimum of a sum of shifted spheres is the mean shift; the global objective is
recomputed here in numpy from the logged points and shifts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator import ConfigError, launch, query
from protocols.blackbox_consensus import BlackboxConsensus, GuideReply, evaluate, global_objective
from protocols.blackbox_consensus.functions import FUNCTIONS
from tests.orchestrator.helpers import moot_cli


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_is_zero_at_its_shift_and_positive_around(function: str) -> None:
    rng = np.random.default_rng(1)
    shift = rng.uniform(-2, 2, (50, 4))
    assert np.allclose(evaluate(function, shift, shift), 0.0, atol=1e-12)
    near = shift + rng.normal(0, 0.05, shift.shape)
    assert np.all(evaluate(function, near, shift) > 0)


def _vectors(log: Path, run_id: str, field: str, round: int) -> np.ndarray:
    rows = query(
        log,
        f"SELECT vector FROM states WHERE field = '{field}' AND round = {round} ORDER BY agent",
        run_id=run_id,
    )
    return np.array(rows.column("vector").to_pylist())


def _run(
    log: Path, proto: BlackboxConsensus, n: int, rounds: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    run = launch(
        proto.default_population(n), proto, rounds=rounds, seed=seed, log=log, runtime="local", state_every=0
    )
    return _vectors(log, run.run_id, "x", rounds - 1), _vectors(log, run.run_id, "shift", -1), run.run_id


def test_on_spheres_the_agents_agree_on_the_optimum_of_the_sum(tmp_path: Path) -> None:
    log = tmp_path / "sphere.duckdb"
    x, shifts, run_id = _run(log, BlackboxConsensus(function="sphere", dim=5), 100, 400)
    optimum = shifts.mean(axis=0)  # the minimiser of sum_i |x - s_i|^2
    assert np.max(np.abs(x.mean(axis=0) - optimum)) < 1e-3
    assert np.max(np.abs(x - optimum)) < 1e-3  # every agent, not only their mean
    # The log's own global objective (SQL over the states) is the numpy one, and the optimum's.
    sql = query(log, f"SELECT * FROM global_objective_by_round('{run_id}') ORDER BY round").to_pylist()
    assert sql[-1]["global_objective"] == pytest.approx(
        global_objective("sphere", x.mean(axis=0), shifts), rel=1e-9
    )
    assert sql[-1]["global_objective"] == pytest.approx(global_objective("sphere", optimum, shifts), rel=1e-6)
    view = query(log, "SELECT * FROM optimisation_by_round ORDER BY round", run_id=run_id).to_pylist()
    assert view[-1]["consensus_error"] < 1e-3 < view[0]["consensus_error"]
    assert view[-1]["evaluations"] == 100 * 400 * (2 * 5 + 1)  # 2 dim + 1 queries a round, no escapes
    assert view[-1]["messages"] > 100 * 399 * 5


def test_on_rastrigin_consensus_beats_isolated_agents_at_equal_evaluations(tmp_path: Path) -> None:
    for seed in range(3):
        out = {}
        for isolated in (False, True):
            proto = BlackboxConsensus(function="rastrigin", dim=5, isolated=isolated)
            log = tmp_path / f"r{seed}{isolated}.duckdb"
            x, shifts, run_id = _run(log, proto, 30, 80, seed)
            used = query(
                log,
                "SELECT sum(value) AS n FROM states WHERE field = 'evaluations' AND round = 79",
                run_id=run_id,
            )
            out[isolated] = (
                global_objective("rastrigin", x.mean(axis=0), shifts),  # at the agents' mean point
                np.mean([global_objective("rastrigin", xi, shifts) for xi in x]),  # at each agent's own
                used.column("n")[0].as_py(),
            )
        (mean_c, own_c, evals_c), (mean_i, own_i, evals_i) = out[False], out[True]
        assert abs(evals_c - evals_i) < 0.01 * evals_i, seed  # equal budgets (escapes differ a little)
        # Each agent's answer, under the global objective: the consensus agents' is better by more
        # than 15% on every seed (measured: 27-29%). At the isolated agents' mean point the two are
        # closer (averaging independent answers is itself a one-shot consensus): not asserted.
        assert own_c < 0.85 * own_i, (seed, own_c, own_i, mean_c, mean_i)


def test_the_guide_is_asked_every_k_rounds_through_the_gateway_and_changes_the_agents(tmp_path: Path) -> None:
    log = tmp_path / "guided.duckdb"
    proto = BlackboxConsensus(function="rastrigin", dim=3, guide_every=5)
    run = launch(
        proto.default_population(20), proto, rounds=11, seed=2, log=log, runtime="local", state_every=5
    )
    calls = query(
        log,
        "SELECT round, count(*) AS n, count(error) AS errors, any_value(model) AS model FROM llm_calls "
        "GROUP BY round ORDER BY round",
        run_id=run.run_id,
    ).to_pylist()
    assert [(c["round"], c["n"], c["errors"]) for c in calls] == [(5, 20, 0), (10, 20, 0)]
    assert {c["model"] for c in calls} == {"moot/simulated"}
    steps = query(
        log,
        "SELECT round, list(value ORDER BY agent) AS v FROM states WHERE field = 'step' "
        "GROUP BY round ORDER BY round",
        run_id=run.run_id,
    ).to_pylist()
    assert len(set(steps[0]["v"])) == 1 and len(set(steps[-1]["v"])) > 1  # guidance scaled some steps


def test_the_stand_in_guide_reads_the_trajectory() -> None:
    rng = np.random.default_rng(0)
    stuck = "improving: no; stalled for 4 rounds; Neighbours: neighbour 3 at distance 0.5; neighbour 7 at distance 9.0; neighbour 9 at distance 0.4."
    reply = GuideReply(**GuideReply.simulate(stuck, rng))
    assert (reply.step_scale, reply.radius_scale, reply.escape, reply.ignore) == (0.5, 2.0, True, [7])
    going = GuideReply(**GuideReply.simulate("improving: yes; stalled for 0 rounds", rng))
    assert (going.step_scale, going.escape, going.ignore) == (1.2, False, [])


def test_the_command_line_runs_it_with_its_dimension(tmp_path: Path) -> None:
    log = tmp_path / "bb.duckdb"
    moot_cli(
        "run",
        "--protocol",
        "blackbox_consensus",
        "--agents",
        "30",
        "--rounds",
        "4",
        "--dim",
        "3",
        "--local",
        "--log",
        str(log),
        "-o",
        "function=ackley",
    )
    rows = query(
        log, "SELECT count(*) AS n, min(len(vector)) AS d FROM messages WHERE kind = 'point'"
    ).to_pylist()[0]
    assert rows["d"] == 2 * 3 + 1 and rows["n"] > 30 * 4 * 4  # point, tracker and degree to every neighbour


def test_bad_settings_are_refused_naming_the_value() -> None:
    with pytest.raises(ConfigError, match="Unknown function 'griewank'; use one of: sphere, rosenbrock"):
        BlackboxConsensus(function="griewank")
    with pytest.raises(ConfigError, match=r"dim must be a whole number >= 1 \(>= 2 for rosenbrock\), got 1"):
        BlackboxConsensus(function="rosenbrock", dim=1)
