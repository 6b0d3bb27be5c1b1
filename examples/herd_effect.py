"""The herd effect (Muchnik, Aral & Taylor 2013; OASIS's Reddit replication), offline.

Reddit mode: 60 seeded posts, a third given one up-vote, a third one down-vote, a third
nothing (control); 5,000 rule-based users whose votes lean toward the score they are shown
(``herd=0.5``); 10 rounds. SQL prints each group's final score with a 95% interval.

    moot run examples/herd_effect.py
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import Population
from orchestrator import launch, params, query
from protocols.social_feed import RuleUser, SocialFeed

USERS = int(params().get("users", 5000))
HERD = float(params().get("herd", 0.5))
ROUNDS = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "10"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "herd_effect.duckdb"))

votes = [(p, 1) for p in range(0, 20)] + [(p, -1) for p in range(20, 40)]  # 40..59: control
study = SocialFeed("reddit", posts=60, votes=votes, activation=0.1, graph=None, max_rec=60)
run = launch(
    Population.of(RuleUser, USERS, herd=HERD, post_p=0.0, repost_p=0.0, follow_p=0.0),
    study,
    rounds=ROUNDS,
    seed=2,
    log=log,
    runtime=os.environ.get("MOOT_RUNTIME", "local"),
)
log = run.log  # where the run went (`moot run --log` may have moved it)
rows = query(
    log,
    f"""SELECT grp, count(*) AS n, avg(score) AS mean, stddev_samp(score) AS sd
        FROM herd_by_post WHERE run_id = '{run.run_id}' GROUP BY grp ORDER BY mean DESC""",
).to_pylist()
table = Table(title=f"final score by seeded vote, {USERS:,} users, herd {HERD}")
for col in ("group", "posts", "mean score", "95% interval"):
    table.add_column(col, justify="right")
for r in rows:
    half = 2.093 * (r["sd"] or 0.0) / math.sqrt(r["n"])  # t(0.975, 19)
    table.add_row(
        r["grp"], str(r["n"]), f"{r['mean']:.2f}", f"{r['mean'] - half:.2f} .. {r['mean'] + half:.2f}"
    )
Console().print(table)
print(f"log: {log} (run_id {run.run_id})")
