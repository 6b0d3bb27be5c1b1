"""moot against Mesa 3: the same push-gossip averaging model, every message recorded in DuckDB.

Mesa's side is written as a Mesa 3 user would write it: agents on a
`mesa.discrete_space.Network` of the same small-world graph (k=6, p=0.3); each
step every agent pushes its opinion to 2 random neighbours (messages collected
in a list, inserted into a DuckDB table at the end of the step from Arrow), then
every agent moves halfway to the mean of what it heard. moot's side:
vectorised `OpinionAgent` (stubbornness 0.5), `Gossip(SmallWorld(k=6, p=0.3),
fanout=2, mode="push")`, every message in its DuckDB log, on a local Ray
instance. Both count messages per second over the steps (graph building and
agent creation excluded on both sides), in one process each, one after the other.

Mesa is installed only for this benchmark (`make bench` does it):

    python benchmarks/vs_mesa.py               # 1,000,000 agents
    python benchmarks/vs_mesa.py --agents 100000
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import in_fresh_process, today, write

FANOUT = 2


def mesa_side(agents: int, steps: int) -> dict[str, object]:
    import duckdb
    import mesa
    import networkx as nx
    import numpy as np
    import pyarrow as pa
    from mesa.discrete_space import CellAgent, Network

    from protocols import SmallWorld

    class Gossiper(CellAgent):
        def __init__(self, model: mesa.Model, cell: object, opinion: float) -> None:
            super().__init__(model)
            self.cell = cell
            self.opinion = opinion
            self.inbox: list[float] = []

        def send(self) -> None:
            neighbours = list(self.cell.neighborhood.agents)
            log = self.model.log
            for other in self.random.sample(neighbours, min(FANOUT, len(neighbours))):
                other.inbox.append(self.opinion)
                log.append((self.unique_id, other.unique_id, self.opinion))

        def update(self) -> None:
            if self.inbox:
                self.opinion = 0.5 * self.opinion + 0.5 * sum(self.inbox) / len(self.inbox)
                self.inbox.clear()

    class GossipModel(mesa.Model):
        def __init__(self, graph: nx.Graph, log_path: str) -> None:
            super().__init__(seed=1)
            self.grid = Network(graph, capacity=1, random=self.random)
            for cell in self.grid.all_cells:
                Gossiper(self, cell, self.random.random())
            self.con = duckdb.connect(log_path)
            self.con.execute(
                "CREATE TABLE messages (round INTEGER, sender BIGINT, receiver BIGINT, value DOUBLE)"
            )
            self.log: list[tuple[int, int, float]] = []

        def step(self) -> None:
            self.log = []
            self.agents.do("send")
            self.agents.do("update")
            sender, receiver, value = zip(*self.log) if self.log else ((), (), ())
            rows = pa.table(
                {
                    "round": pa.array([self.steps] * len(self.log), pa.int32()),
                    "sender": pa.array(sender, pa.int64()),
                    "receiver": pa.array(receiver, pa.int64()),
                    "value": pa.array(value, pa.float64()),
                }
            )
            self.con.register("step_rows", rows)
            self.con.execute("INSERT INTO messages SELECT * FROM step_rows")
            self.con.unregister("step_rows")

    topo = SmallWorld(k=6, p=0.3).build(agents, 1)
    src = np.repeat(np.arange(agents), np.diff(topo.offsets))
    graph = nx.Graph()
    graph.add_nodes_from(range(agents))
    graph.add_edges_from(zip(src.tolist(), topo.targets.tolist()))
    log = str(Path(tempfile.mkdtemp()) / "mesa.duckdb")
    t0 = time.perf_counter()
    model = GossipModel(graph, log)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        model.step()
    seconds = time.perf_counter() - t0
    messages = model.con.execute("SELECT count(*) FROM messages").fetchall()[0][0]
    model.con.close()
    return {
        "side": f"Mesa {mesa.__version__}",
        "agents": agents,
        "rounds": steps,
        "messages": int(messages),
        "seconds": round(seconds, 2),
        "build_s": round(build, 2),
        "messages_per_s": round(messages / seconds),
    }


def moot_side(agents: int, rounds: int) -> dict[str, object]:
    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch
    from protocols import Gossip, SmallWorld

    log = Path(tempfile.mkdtemp()) / "moot.duckdb"
    run = launch(
        Population.of(OpinionAgent, agents, opinion=Uniform()),
        Gossip(SmallWorld(k=6, p=0.3), fanout=FANOUT, mode="push"),
        rounds=rounds,
        seed=1,
        log=log,
        state_every=0,
        stop="never",
    )
    rows = run.sql("SELECT count(*) AS n FROM messages").column("n")[0].as_py()
    assert rows == run.messages
    seconds = run.seconds - run.setup_seconds  # the rounds, with the log's catch-up after the last
    return {
        "side": f"moot ({run.hosts} hosts)",
        "agents": agents,
        "rounds": rounds,
        "messages": int(run.messages),
        "seconds": round(seconds, 2),
        "build_s": round(run.setup_seconds, 2),
        "messages_per_s": round(run.messages / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", choices=["moot", "mesa"])
    args = parser.parse_args()
    if args.side:
        import json

        fn = mesa_side if args.side == "mesa" else moot_side
        print("RESULT " + json.dumps(fn(args.agents, args.rounds)), flush=True)
        return
    me = str(Path(__file__))
    mesa_r = in_fresh_process(me, "--side", "mesa", "--agents", args.agents, "--rounds", args.rounds)
    moot_r = in_fresh_process(me, "--side", "moot", "--agents", args.agents, "--rounds", args.rounds)
    ratio = round(float(moot_r["messages_per_s"]) / float(mesa_r["messages_per_s"]), 1)
    data = {
        "date": today(),
        "machine": f"{platform.machine()}, 2 CPUs",
        "mesa": mesa_r,
        "moot": moot_r,
        "ratio": ratio,
    }
    rows = [
        [r["side"], r["agents"], r["rounds"], r["messages"], r["seconds"], r["messages_per_s"]]
        for r in (mesa_r, moot_r)
    ]
    print(
        write(
            "vs_mesa",
            data,
            f"moot vs Mesa, push gossip, every message in DuckDB ({today()}): {ratio}x",
            ["side", "agents", "rounds", "messages", "seconds (rounds)", "messages/s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
