"""How far does one post spread? The same seeded post, 10,000 users, two recommenders side by side.

X mode: rule-based users on a scale-free follow graph, 10% active per round. One run
ranks feeds by Reddit's hot score, the other by interest (cosine x recency). SQL then
prints the seeded post's cascade per round, OASIS's measures: scale (users involved),
depth (longest repost chain) and maximum breadth (most reposts at one depth).

    moot run examples/information_spread.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import Population
from orchestrator import launch, params, query
from protocols.social_feed import RuleUser, SocialFeed

USERS = int(params().get("users", 10_000))
ROUNDS = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "20"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "information_spread.duckdb"))
log.unlink(missing_ok=True)

seed_post = [(0, "Breaking: a new study finds that city trees cut summer heat by four degrees.")]
runs = {}
for recommender in ("hot", "interest"):
    study = SocialFeed("x", recommender=recommender, posts=seed_post, activation=0.1)
    runs[recommender] = launch(
        Population.of(RuleUser, USERS, repost_p=0.3, like_p=0.3),
        study,
        rounds=ROUNDS,
        seed=1,
        log=log,
        runtime=os.environ.get("MOOT_RUNTIME", "local"),
        params={"recommender": recommender},
    )
log = runs["hot"].log  # where the runs went (`moot run --log` may have moved it)

table = Table(title=f"the seeded post's cascade, {USERS:,} users (scale / depth / max breadth)")
table.add_column("round", justify="right")
for name in runs:
    table.add_column(name, justify="right")
per = {
    name: {
        r["round"]: r
        for r in query(
            log,
            "SELECT round, scale, depth, max_breadth FROM cascade_by_round "
            f"WHERE run_id = '{run.run_id}' AND root = 0",
        ).to_pylist()
    }
    for name, run in runs.items()
}
for rnd in range(ROUNDS):
    cells = []
    for name in runs:
        r = per[name].get(rnd)
        cells.append(f"{r['scale']} / {r['depth']} / {r['max_breadth']}" if r else "1 / 0 / 0")
    table.add_row(str(rnd), *cells)
Console().print(table)
print(f"log: {log}; all cascades: SELECT * FROM cascade_by_round ORDER BY scale DESC LIMIT 10")
