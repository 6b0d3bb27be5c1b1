"""`moot report`: one self-contained HTML file that shows what happened in one or more runs.

Plots are drawn by matplotlib into inline SVG (the swarm's replay: PNG frames with
matplotlib's own HTML player), so the file needs no network, no script library and no
server: it opens in any browser, offline, years later. Why matplotlib: plotly's offline
bundle alone is about 4.6 MB of the 5 MB the report may weigh, and Vega-Lite needs its
JavaScript inlined from a build that is not on the package index; matplotlib draws on the
machine that writes the report, so the browser only shows pictures, and what a browser
cannot draw is sampled before it is drawn (at most 40 agents' trajectories, 60 replay frames).

The report holds: each run's configuration and health (status, stop reason, rounds,
participation, errors, LLM cost, convergence round); every metric over rounds, one panel
each, runs overlaid (labelled by the parameters that differ between them: a sweep's curves
per parameter value); per protocol, opinion trajectories and the final distribution
(opinion models), accuracy and conformity by strategy (debate), a replay of positions (swarm
grid), activity, cascades and stances (social feed; its polarisation metrics are among the
panels), cost, tokens and latency per round (LLM runs); and the diagnostics table (`moot
analyze`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import duckdb

from orchestrator.analysis import analyze
from orchestrator.analysis.diagnostics import METRICS
from orchestrator.errors import ConfigError
from orchestrator.log.query import open_log

__all__ = ["report"]

_MAX_RUNS = 12
_MAX_TRAJECTORIES = 40
_MAX_FRAMES = 60
_QUIET = {"seconds", "agents"}  # metrics not worth a panel


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(title: str, body: str) -> str:
    return f'<figure class="plot"><figcaption>{html.escape(title)}</figcaption>{body}</figure>'


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _runs(con: duckdb.DuckDBPyConnection, path: Path, wanted: list[str]) -> list[dict[str, Any]]:
    rows = _rows(
        con,
        "SELECT run_id, protocol, status, stop_reason, rounds, n_agents, n_hosts, seed, params, config, "
        "messages, seconds FROM runs ORDER BY started_at DESC",
    )
    if wanted:
        known = {r["run_id"] for r in rows}
        missing = [w for w in wanted if w not in known]
        if missing:
            raise ConfigError(
                f"No run {missing[0]!r} in {str(path)!r}; its runs: {', '.join(sorted(known))}."
            )
        rows = [r for r in rows if r["run_id"] in wanted]
    if not rows:
        raise ConfigError(f"The log {str(path)!r} holds no run yet.")
    return list(reversed(rows[:_MAX_RUNS]))


def _labels(runs: list[dict[str, Any]]) -> dict[str, str]:
    """Each run's label: the parameters that differ between the runs (a sweep's point), else its id."""
    params = [json.loads(r["params"] or "{}") for r in runs]
    keys = sorted({k for p in params for k in p if len({json.dumps(q.get(k)) for q in params}) > 1})
    out = {}
    for r, p in zip(runs, params):
        out[r["run_id"]] = ", ".join(f"{k}={p.get(k)}" for k in keys) if keys else r["run_id"]
    return out


def _health(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> list[tuple[str, str]]:
    rid = run["run_id"]
    sent = _rows(
        con,
        "SELECT count(DISTINCT sender) AS active FROM messages WHERE run_id = ? AND sender >= 0",
        [rid],
    )[0]["active"]
    errors = _rows(con, "SELECT count(*) AS n FROM events WHERE run_id = ? AND kind = 'error'", [rid])[0]["n"]
    llm = _rows(
        con,
        "SELECT count(*) AS calls, count(error_type) AS failed, sum(cost) AS cost FROM llm_calls "
        "WHERE run_id = ?",
        [rid],
    )[0]
    spread = _rows(
        con,
        "SELECT round, value FROM metrics WHERE run_id = ? AND name = 'spread' ORDER BY round",
        [rid],
    )
    converged = "—"
    if spread and spread[0]["value"]:
        first = next((s["round"] for s in spread if s["value"] <= 0.01 * spread[0]["value"]), None)
        converged = (
            f"round {first} (spread below 1% of round 0's)" if first is not None else "not within the run"
        )
    n = run["n_agents"] or 0
    out = [
        ("status", str(run["status"])),
        ("stop reason", str(run["stop_reason"])),
        ("agents · hosts · seed", f"{n:,} · {run['n_hosts']} · {run['seed']}"),
        ("rounds · messages", f"{run['rounds']} · {run['messages'] or 0:,}"),
        ("participation", f"{sent / n:.1%} of agents sent something" if n else "—"),
        ("errors", f"{errors} error event(s)"),
        ("convergence", converged),
    ]
    if llm["calls"]:
        cost = "unknown (unpriced model)" if llm["cost"] is None else f"${llm['cost']:.4f}"
        out.append(("LLM calls", f"{llm['calls']:,} ({llm['failed']} failed), cost {cost}"))
    return out


def _metric_panels(con: duckdb.DuckDBPyConnection, runs: list[dict[str, Any]], labels: dict[str, str]) -> str:
    plt = _plt()
    ids = [r["run_id"] for r in runs]
    rows = _rows(
        con,
        "SELECT run_id, name, round, value FROM metrics WHERE list_contains(?, run_id) "
        "AND name NOT LIKE '%.%' ORDER BY name, run_id, round",
        [ids],
    )
    names = sorted({r["name"] for r in rows} - _QUIET)
    if not names:
        return ""
    cols = 3
    fig, axes = plt.subplots(
        math.ceil(len(names) / cols), cols, figsize=(12, 2.6 * math.ceil(len(names) / cols))
    )
    flat = list(getattr(axes, "flat", [axes]))
    for ax, name in zip(flat, names):
        for rid in ids:
            pts = [(r["round"], r["value"]) for r in rows if r["name"] == name and r["run_id"] == rid]
            if pts:
                ax.plot(*zip(*pts), marker="." if len(pts) < 40 else None, label=labels[rid])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("round", fontsize=8)
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    if len(ids) > 1:
        flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _figure("every metric over rounds" + (" (runs overlaid)" if len(ids) > 1 else ""), _svg(fig))


def _opinions(con: duckdb.DuckDBPyConnection, run: dict[str, Any], field: str | None = None) -> str:
    """Trajectories of a sample of agents' watched field (or `field`), and everyone's last value
    (the opinion models' clusters; the feed's stances)."""
    fields = [field] if field else json.loads(run["config"] or "{}").get("watched_fields") or []
    if not fields:
        return ""
    field, rid = fields[0], run["run_id"]
    n = max(int(run["n_agents"] or 1), 1)
    step = max(1, n // _MAX_TRAJECTORIES)
    rows = _rows(
        con,
        "SELECT agent, round, value FROM states WHERE run_id = ? AND field = ? AND agent % ? = 0 "
        "AND value IS NOT NULL ORDER BY agent, round",
        [rid, field, step],
    )
    if not rows:
        return ""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw={"width_ratios": [2, 1]})
    agents = sorted({r["agent"] for r in rows})[:_MAX_TRAJECTORIES]
    for agent in agents:
        pts = [(r["round"], r["value"]) for r in rows if r["agent"] == agent]
        a.plot(*zip(*pts), lw=0.8, alpha=0.7)
    a.set_xlabel("round (states are logged every state_every rounds)")
    a.set_ylabel(field)
    last = _rows(
        con,
        "SELECT value FROM states WHERE run_id = ? AND field = ? AND round = "
        "(SELECT max(round) FROM states WHERE run_id = ? AND field = ?) AND value IS NOT NULL",
        [rid, field, rid, field],
    )
    b.hist([r["value"] for r in last], bins=40)
    b.set_xlabel(f"{field} after the last round (clusters)")
    fig.tight_layout()
    return _figure(f"{field}: {len(agents)} agents' trajectories, and everyone's last value", _svg(fig))


def _debate(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> str:
    rows = _rows(
        con,
        "SELECT strategy, round, accuracy FROM debate_accuracy_by_round WHERE run_id = ? ORDER BY ALL",
        [run["run_id"]],
    )
    conform = _rows(
        con,
        "SELECT strategy, from_round, conformity FROM debate_conformity WHERE run_id = ? ORDER BY ALL",
        [run["run_id"]],
    )
    if not rows:
        return ""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.2))
    for s in sorted({r["strategy"] for r in rows}):
        a.plot(*zip(*[(r["round"], r["accuracy"]) for r in rows if r["strategy"] == s]), marker="o", label=s)
        pts = [(r["from_round"], r["conformity"]) for r in conform if r["strategy"] == s]
        if pts:
            b.plot(*zip(*pts), marker="o", label=s)
    a.set_title("accuracy by strategy", fontsize=10)
    b.set_title("conformity by strategy (from round)", fontsize=10)
    a.legend(fontsize=7)
    fig.tight_layout()
    return _figure("debate: accuracy and conformity by strategy and round", _svg(fig))


def _feed(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> str:
    """The feed's activity by kind and its cascades, round by round."""
    activity = _rows(
        con, "SELECT * FROM feed_activity_by_round WHERE run_id = ? ORDER BY round", [run["run_id"]]
    )
    cascades = _rows(
        con,
        "SELECT round, scale, depth FROM cascade_by_round WHERE run_id = ? ORDER BY round",
        [run["run_id"]],
    )
    if not activity:
        return ""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.2))
    x = [r["round"] for r in activity]
    for kind in ("posts", "reposts", "quotes", "likes", "follows"):
        a.plot(x, [r[kind] for r in activity], marker=".", label=kind)
    a.set_title("actions per round", fontsize=10)
    a.legend(fontsize=7)
    if cascades:
        b.scatter([c["round"] for c in cascades], [c["scale"] for c in cascades], s=12, label="scale")
        b.scatter(
            [c["round"] for c in cascades], [c["depth"] for c in cascades], s=12, marker="x", label="depth"
        )
        b.legend(fontsize=7)
    b.set_title("cascades (one point per cascade and round)", fontsize=10)
    fig.tight_layout()
    return _figure("feed: activity and cascades", _svg(fig)) + _opinions(con, run, "stance")


def _replay(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> str:
    """The swarm's positions, round by round (the rounds whose states were logged)."""
    rows = _rows(
        con,
        "SELECT round, agent, max(value) FILTER (field = 'row') AS r, max(value) FILTER (field = 'col') AS c "
        "FROM states WHERE run_id = ? AND field IN ('row', 'col') GROUP BY ALL ORDER BY round, agent",
        [run["run_id"]],
    )
    rounds = sorted({r["round"] for r in rows})
    if len(rounds) < 2:
        return ""
    keep = rounds[:: max(1, math.ceil(len(rounds) / _MAX_FRAMES))]
    plt = _plt()
    rmax = max(r["r"] for r in rows) + 1
    cmax = max(r["c"] for r in rows) + 1
    frames = []
    for at in keep:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.set_xlim(-0.5, cmax - 0.5)
        ax.set_ylim(rmax - 0.5, -0.5)
        ax.scatter(
            [r["c"] for r in rows if r["round"] == at], [r["r"] for r in rows if r["round"] == at], s=20
        )
        ax.set_title(f"after round {at}" if at >= 0 else "before round 0")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        frames.append(base64.b64encode(buf.getvalue()).decode())
    shown = ["block"] + ["none"] * (len(frames) - 1)
    images = "".join(
        f'<img src="data:image/png;base64,{f}" alt="positions" style="display:{d}">'
        for f, d in zip(frames, shown)
    )
    player = (
        f'<div class="replay">{images}<div><button type="button">play</button> '
        f'<input type="range" min="0" max="{len(frames) - 1}" value="0"></div></div>'
    )
    return _figure(f"swarm: positions in the {len(keep)} logged rounds (replay)", player)


def _llm(con: duckdb.DuckDBPyConnection, runs: list[dict[str, Any]], labels: dict[str, str]) -> str:
    ids = [r["run_id"] for r in runs]
    rows = _rows(
        con, "SELECT * FROM llm_cost_by_round WHERE list_contains(?, run_id) ORDER BY run_id, round", [ids]
    )
    if not rows:
        return ""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    for rid in ids:
        mine = [r for r in rows if r["run_id"] == rid]
        if not mine:
            continue
        x = [r["round"] for r in mine]
        axes[0].plot(x, [r["cumulative_cost"] or 0 for r in mine], label=labels[rid])
        axes[1].plot(x, [r["prompt_tokens"] + r["completion_tokens"] for r in mine])
        axes[2].plot(x, [r["latency_p50"] for r in mine], label="p50")
        axes[2].plot(x, [r["latency_p95"] for r in mine], ls="--", label="p95")
    for ax, t in zip(axes, ("cumulative cost $", "tokens per round", "latency s")):
        ax.set_title(t, fontsize=10)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return _figure("LLM calls: cost, tokens and latency per round", _svg(fig))


def _diagnostics(log: Path, run_id: str, rounds: int) -> str:
    """The whole run's diagnostics (one window: the report shows no series, so none is computed)."""
    table = analyze(log, run_id, window=max(rounds, 1)).to_pylist()
    whole = [r for r in table if r["window"] is None]
    body = "".join(
        f"<tr><td>{html.escape(r['metric'])}</td><td>{r['value']:.4g}</td>"
        f"<td>{html.escape(METRICS.get(r['metric'], ''))}</td></tr>"
        for r in whole
    )
    return (
        f"<h3>Diagnostics of {html.escape(run_id)} (moot analyze)</h3>"
        f"<table><tr><th>metric</th><th>value</th><th>what it counts</th></tr>{body}</table>"
    )


_PLAYER = """
document.querySelectorAll(".replay").forEach(function (box) {
  var frames = box.querySelectorAll("img"), slider = box.querySelector("input"), timer = null;
  function show(k) { frames.forEach(function (f, i) { f.style.display = i == k ? "block" : "none"; });
                     slider.value = k; }
  slider.addEventListener("input", function () { show(+slider.value); });
  box.querySelector("button").addEventListener("click", function () {
    if (timer) { clearInterval(timer); timer = null; return; }
    var k = 0;
    timer = setInterval(function () {
      show(k); k += 1;
      if (k >= frames.length) { clearInterval(timer); timer = null; }
    }, 400);
  });
});
"""
"""The replay's player: a slider and a play button over the frames (no library)."""

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; }
figure.plot { margin: 1em 0 2em; } figcaption { font-weight: 600; margin-bottom: 0.4em; }
figure.plot svg { max-width: 100%; height: auto; } details pre { font-size: 12px; background: #f6f6f6; }
"""


def _run_header(con: duckdb.DuckDBPyConnection, run: dict[str, Any], label: str) -> str:
    """A run's title, health table and configuration."""
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _health(con, run)
    )
    config = html.escape(json.dumps(json.loads(run["config"] or "{}"), indent=2))
    title = " · ".join(html.escape(str(x)) for x in (run["run_id"], run["protocol"], label))
    return (
        f"<h2>{title}</h2><table>{cells}</table>"
        f"<details><summary>configuration</summary><pre>{config}</pre></details>"
    )


def report(
    log: str | os.PathLike[str], out: str | os.PathLike[str], run_ids: list[str] | None = None
) -> Path:
    """Write the report of the runs `run_ids` (default: the log's runs, at most 12, the latest)
    of `log` to `out`, one self-contained HTML file; returns its path."""
    path, target = Path(log), Path(out)
    con = open_log(path)
    try:
        runs = _runs(con, path, run_ids or [])
        labels = _labels(runs)
        parts = [f"<h1>moot report: {html.escape(path.name)}</h1>"]
        parts += [_run_header(con, run, labels[run["run_id"]]) for run in runs]
        parts.append(_metric_panels(con, runs, labels))
        first = runs[-1]
        parts.append(_llm(con, runs, labels))
        if first["protocol"] == "debate":
            parts.append(_debate(con, first))
        elif first["protocol"] == "swarm_grid":
            parts.append(_replay(con, first))
        elif first["protocol"] == "social_feed":
            parts.append(_feed(con, first))
        else:
            parts.append(_opinions(con, first))
    finally:
        con.close()
    parts.append(_diagnostics(path, first["run_id"], int(first["rounds"] or 1)))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>moot report</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(p for p in parts if p)}"
        f"<script>{_PLAYER}</script></body></html>"
    )
    target.write_text(page, encoding="utf-8")
    return target
