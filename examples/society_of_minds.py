"""MachineSoM's grid in one run: 4 trait mixes x 8 collaboration strategies x N questions.

Societies of 3 debaters answer Du et al.'s arithmetic questions: round 0 alone,
then three rounds whose pattern is given by the strategy (0 debate: read the
others' previous answers; 1 reflection: check your own). The mixes are
MachineSoM's: k easy-going agents and 3-k overconfident ones, k = 0..3. SQL then
prints accuracy (strict majority vote), consistency (distinct answers) and
conformity per strategy.

Offline by default: LLM debaters on ``moot/simulated``, a seeded stand-in, not a
language model. ``-p debaters=rule`` uses the rule-based debaters instead.

    moot run examples/society_of_minds.py
    moot run examples/society_of_minds.py -p questions=50 --model openai/gpt-4o-mini --rpm 3000 --budget 5
    moot run examples/society_of_minds.py --model hosted_vllm/Qwen2.5-7B-Instruct --api-base http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import Population
from orchestrator import launch, params, query
from orchestrator.llm.offline import model_label
from protocols.debate import Debate, LLMDebater, RuleDebater

QUESTIONS = int(params().get("questions", 5))
REPEATS = int(params().get("repeats", 1))
DEBATERS = str(params().get("debaters", "llm"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "society_of_minds.duckdb"))

strategies = ["".join(s) for s in itertools.product("01", repeat=3)]  # 000 ... 111
study = Debate(n_questions=QUESTIONS, strategies=strategies, mixes="machinesom")
societies = QUESTIONS * len(strategies) * 4 * REPEATS
cls = LLMDebater if DEBATERS == "llm" else RuleDebater
run = launch(
    Population.of(cls, 3 * societies),
    study,
    rounds=4,
    seed=0,
    log=log,
    runtime=os.environ.get("MOOT_RUNTIME", "local"),
    stop=lambda round, metrics: False,  # every society plays its 3 rounds, as in MachineSoM
    params={"debaters": DEBATERS, "questions": QUESTIONS, "repeats": REPEATS},
)
log = run.log  # where the run went (`moot run --log` may have moved it)

rid = run.run_id
rows = query(
    log,
    f"""
    WITH final AS (SELECT strategy, sum(accuracy * societies) / sum(societies) AS accuracy,
                          sum(consistency * societies) / sum(societies) AS consistency
                   FROM debate_accuracy_by_round WHERE run_id = '{rid}' AND round = 3 GROUP BY strategy),
         conf AS (SELECT strategy, sum(conforming) / sum(transitions) AS conformity,
                         sum(ft) AS fixed, sum(tf) AS broken
                  FROM debate_conformity WHERE run_id = '{rid}' GROUP BY strategy)
    SELECT * FROM final LEFT JOIN conf USING (strategy) ORDER BY strategy
    """,
).to_pylist()
model = "rule-based debaters"
if DEBATERS == "llm":
    m = query(log, f"SELECT any_value(model) AS m FROM llm_calls WHERE run_id = '{rid}'").to_pylist()[0]["m"]
    model = f"model {model_label(m)}"
table = Table(title=f"{societies} societies of 3, {QUESTIONS} questions; {model}")
for col in ("strategy", "accuracy", "consistency", "conformity", "wrong->right", "right->wrong"):
    table.add_column(col, justify="right")
for r in rows:
    conformity = "" if r["conformity"] is None else f"{r['conformity']:.3f}"
    table.add_row(
        r["strategy"],
        f"{r['accuracy']:.3f}",
        f"{r['consistency']:.3f}",
        conformity,
        str(r["fixed"] or 0),
        str(r["broken"] or 0),
    )
Console().print(table)
print(f"log: {log} (run_id {rid}); per round: SELECT * FROM debate_accuracy_by_round WHERE run_id = '{rid}'")
