"""Agent-society diagnostics over a run's log (../shared/reference/society-metrics.md).

Every diagnostic is a row ``(metric, window, value, definition)``: ``window`` is the first
round of a window of k rounds (NULL: the whole run), ``definition`` says what was counted
(the edge definition, zero handling, the estimator), since the same name means different
numbers under different definitions (the spec's lesson from Moltbook: reciprocity 1% or
0.197 on one platform).

The **interaction graph** has an edge u→v, weighted by count, for every delivered message
from agent u to agent v in the window (rows of ``messages`` with a receiver; self-loops
dropped). DuckDB counts; networkx computes what it computes (reciprocity, HITS, PageRank,
assortativity, Louvain communities and modularity, neighbour degrees).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import networkx as nx
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

__all__ = ["METRICS", "analyze_connection", "gini", "hill_alpha"]

METRICS: dict[str, str] = {
    "agents": "agents in the run",
    "participation": "share of agents that sent at least one message or action (per window: in it)",
    "gini_sent": "Gini of messages and actions sent per agent (every agent, zeros kept)",
    "gini_received": "Gini of messages received per agent (every agent, zeros kept)",
    "gini_followers": "Gini of followers per agent (follow actions; the social feed)",
    "reciprocity": "share of the interaction graph's edges whose reverse exists (networkx's definition)",
    "hits_hub_top": "largest HITS hub score (networkx.hits, normalised)",
    "hits_authority_top": "largest HITS authority score",
    "hits_hub_authority_overlap": "Jaccard overlap of the top-1% hubs and top-1% authorities",
    "pagerank_top5": "sum of the 5 largest PageRank values (alpha 0.85, weighted by count)",
    "influence_persistence": "Jaccard overlap of the top-5 PageRank agents between consecutive windows",
    "powerlaw_alpha_in": "discrete Hill MLE of the in-degree tail exponent (x_min 1, degree > 0)",
    "powerlaw_alpha_out": "discrete Hill MLE of the out-degree tail exponent (x_min 1, degree > 0)",
    "assortativity": "degree assortativity, out-degree of the source against in-degree of the target",
    "communities": "Louvain communities of the undirected weighted graph (seed 0)",
    "modularity": "modularity of those communities (networkx.community.modularity)",
    "friendship_paradox": "share of agents whose neighbours have more neighbours than they do (undirected)",
    "friendship_paradox_follow": "share of followers whose followees have more followers than they do",
    "inertia": "share of agents whose watched field ended where it started (first and last logged state)",
    "drift": "mean absolute change of the watched field per agent, first to last logged state",
    "consensus": "1 - spread of the watched field in the last round (1: all agree)",
    "answer_consensus": "1 - normalised entropy of the agents' last text answers (states.text)",
    "lexical_birth": "share of a window's words and word pairs never seen before it",
    "lexical_death": "share of the previous window's words and word pairs absent from this one",
    "semantic_stability": "cosine of consecutive windows' mean text vectors (hashed words, not embeddings)",
}
"""Every metric's name (the keys of ``moot analyze --format json``) and what it counts."""


def gini(values: Iterable[float]) -> float:
    """Gini coefficient, population form, zeros kept: sum((2i - n - 1) x_(i)) / (n sum x)."""
    x = np.sort(np.asarray(list(values), np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def hill_alpha(degrees: Iterable[int]) -> float:
    """Discrete Hill estimator of a power-law exponent with x_min = 1 (Clauset et al. 2009,
    eq. 3.7: 1 + n / sum ln(x / (x_min - 1/2))), over values >= 1; NaN with fewer than 2."""
    x = np.asarray([d for d in degrees if d >= 1], np.float64)
    if len(x) < 2:
        return math.nan
    return float(1 + len(x) / np.log(x / 0.5).sum())


@dataclass
class _Rows:
    """The rows being built: (metric, window, value, definition)."""

    out: list[tuple[str, int | None, float, str]]

    def add(self, metric: str, window: int | None, value: float, **definition: Any) -> None:
        self.out.append((metric, window, float(value), json.dumps(definition, sort_keys=True)))


def _prepare(con: duckdb.DuckDBPyConnection, window: int, every: int) -> None:
    """One pass over the run's messages: the interaction graph's edges and each agent's messages
    sent and received, per window (``w`` = round // window), as temporary tables. With `every`
    > 1, the graph is induced on the agents whose hash is 0 modulo `every` (a seeded sample of
    about 1/every of them: a graph of millions of agents is beyond networkx in reasonable time,
    and counting its edges alone took most of the time)."""
    sample = "" if every == 1 else f" AND hash(sender) % {every} = 0 AND hash(receiver) % {every} = 0"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _edges AS SELECT sender AS u, receiver AS v, round // ? AS w, "
        "count(*) AS n FROM messages WHERE receiver IS NOT NULL AND sender >= 0 AND receiver >= 0 "
        f"AND sender <> receiver{sample} GROUP BY ALL",
        [window],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _activity AS "
        "SELECT 'sent' AS side, sender AS a, round // $1 AS w, count(*) AS n FROM messages WHERE sender >= 0 "
        "GROUP BY ALL UNION ALL "
        "SELECT 'received', receiver, round // $1, count(*) FROM messages WHERE receiver >= 0 GROUP BY ALL",
        [window],
    )


def _where(w: int | None) -> tuple[str, list[Any]]:
    return ("", []) if w is None else (" AND w = ?", [w])


def _graph(con: duckdb.DuckDBPyConnection, w: int | None, every: int = 1) -> nx.DiGraph:
    """The interaction graph of window `w` (None: the whole run), as `_prepare` sampled it."""
    window, args = _where(w)
    edges = con.execute(f"SELECT u, v, sum(n) FROM _edges WHERE TRUE{window} GROUP BY ALL", args).fetchall()
    g = nx.DiGraph()
    g.add_weighted_edges_from(edges)
    g.graph["every"] = every
    return g


def _counts(con: duckdb.DuckDBPyConnection, side: str, n: int, w: int | None) -> NDArray[np.float64]:
    """Messages per agent (`side`: sent or received) in window `w` (None: the whole run), every
    agent 0..n-1."""
    window, args = _where(w)
    got = con.execute(
        f"SELECT a, sum(n) AS n FROM _activity WHERE side = ? AND a < ?{window} GROUP BY a", [side, n, *args]
    ).fetchnumpy()
    out = np.zeros(n)
    out[np.asarray(got["a"], np.int64)] = got["n"]
    return out


def _top(scores: dict[Any, float], k: int) -> set[Any]:
    return {a for a, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]}


def _jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _graph_metrics(rows: _Rows, g: nx.DiGraph, window: int | None) -> set[Any]:
    """Reciprocity, HITS, PageRank (returns its top 5), degree tails, assortativity,
    communities, friendship paradox: the interaction graph's metrics."""
    if g.number_of_edges() == 0:
        return set()
    edge = "interaction: u->v per delivered message, weight = count, self-loops dropped"
    if g.graph.get("every", 1) > 1:
        edge += f"; induced on a hashed sample of 1/{g.graph['every']} of the agents"
    pr = nx.pagerank(g, alpha=0.85, weight="weight")
    top5 = _top(pr, 5)
    rows.add("pagerank_top5", window, sum(pr[a] for a in top5), graph=edge, alpha=0.85)
    if window is not None:
        return top5
    hubs, auths = nx.hits(g, max_iter=1000, normalized=True)
    rows.add("hits_hub_top", window, max(hubs.values()), graph=edge, weighted=False)
    rows.add("hits_authority_top", window, max(auths.values()), graph=edge, weighted=False)
    k = max(1, g.number_of_nodes() // 100)
    rows.add("hits_hub_authority_overlap", window, _jaccard(_top(hubs, k), _top(auths, k)), k=k)
    rows.add(
        "powerlaw_alpha_in",
        window,
        hill_alpha(d for _, d in g.in_degree()),
        estimator="discrete Hill, x_min 1",
    )
    rows.add(
        "powerlaw_alpha_out",
        window,
        hill_alpha(d for _, d in g.out_degree()),
        estimator="discrete Hill, x_min 1",
    )
    if g.number_of_edges() > 1:
        rows.add(
            "assortativity", window, nx.degree_assortativity_coefficient(g, x="out", y="in"), x="out", y="in"
        )
    und = g.to_undirected()
    parts = nx.community.louvain_communities(und, weight="weight", seed=0)
    rows.add("communities", window, len(parts), algorithm="louvain", seed=0, weighted=True)
    rows.add("modularity", window, nx.community.modularity(und, parts, weight="weight"), algorithm="louvain")
    rows.add("friendship_paradox", window, _paradox(und), graph="interaction, undirected")
    return top5


def _reciprocity(con: duckdb.DuckDBPyConnection, w: int | None) -> float | None:
    """Share of the interaction graph's edges (window `w`, None: the whole run) whose reverse
    edge exists: networkx's `overall_reciprocity`, as a DuckDB self-join (the spec's sketch).
    None without edges."""
    window, args = _where(w)
    got = con.execute(
        f"WITH e AS (SELECT DISTINCT u, v FROM _edges WHERE TRUE{window}) "
        "SELECT count(r.u), count(*) FROM e LEFT JOIN e AS r ON r.u = e.v AND r.v = e.u",
        args,
    ).fetchall()[0]
    return got[0] / got[1] if got[1] else None


def _paradox(g: nx.Graph) -> float:
    """Share of nodes whose neighbours' mean degree exceeds their own (networkx's neighbour degree)."""
    mean = nx.average_neighbor_degree(g)
    deg = dict(g.degree())
    nodes = [v for v in g if deg[v] > 0]
    return sum(mean[v] > deg[v] for v in nodes) / len(nodes) if nodes else math.nan


def _follow_metrics(rows: _Rows, con: duckdb.DuckDBPyConnection, n: int) -> None:
    """Followers' inequality and the follow graph's friendship paradox (follow actions)."""
    edges = con.execute(
        "SELECT DISTINCT sender, CAST(value AS BIGINT) FROM messages WHERE kind = 'follow' "
        "AND receiver IS NULL AND value IS NOT NULL"
    ).fetchall()
    if not edges:
        return
    g = nx.DiGraph()
    g.add_edges_from((int(a), int(b)) for a, b in edges if a != b)
    followers = np.zeros(n)
    for v, d in g.in_degree():
        if 0 <= v < n:
            followers[v] = d
    rows.add("gini_followers", None, gini(followers), graph="follow actions", zeros="kept")
    share = [
        np.mean([followers[f] for f in g.successors(u)]) > followers[u] for u in g if g.out_degree(u) > 0
    ]
    rows.add("friendship_paradox_follow", None, float(np.mean(share)), graph="follow: follower -> followee")


def _state_metrics(rows: _Rows, con: duckdb.DuckDBPyConnection, field: str | None) -> None:
    """Inertia and drift of the watched field; consensus in the last round; answers' entropy."""
    if field:
        got = con.execute(
            "WITH s AS (SELECT agent, round, value FROM states WHERE field = ? AND value IS NOT NULL), "
            "b AS (SELECT min(round) AS a, max(round) AS z FROM s) "
            "SELECT avg((f.value = l.value)::INT), avg(abs(l.value - f.value)) "
            "FROM s f JOIN s l USING (agent), b WHERE f.round = b.a AND l.round = b.z AND b.a < b.z",
            [field],
        ).fetchall()[0]
        if got[0] is not None:
            rows.add("inertia", None, got[0], field=field)
            rows.add("drift", None, got[1], field=field)
        spread = con.execute(
            "SELECT value FROM metrics WHERE name = 'spread' ORDER BY round DESC LIMIT 1"
        ).fetchall()
        if spread:
            rows.add("consensus", None, 1 - spread[0][0], field=field, spread="max - min, last round")
    texts = con.execute(
        "SELECT text, count(*) FROM states WHERE text IS NOT NULL AND round = "
        "(SELECT max(round) FROM states WHERE text IS NOT NULL) GROUP BY ALL"
    ).fetchall()
    counts = np.array([c for _, c in texts], np.float64)
    if len(counts) > 1:
        p = counts / counts.sum()
        rows.add(
            "answer_consensus", None, 1 + float((p * np.log(p)).sum()) / math.log(len(p)), of="last texts"
        )
    elif len(counts) == 1:
        rows.add("answer_consensus", None, 1.0, of="last texts")


_WORD = re.compile(r"[a-z0-9']+")
_DIM = 2**12


def _grams(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}


def _vector(grams: Iterable[str]) -> NDArray[np.float64]:
    v = np.zeros(_DIM)
    for g in grams:
        v[int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") % _DIM] += 1.0
    return v


def _text_metrics(rows: _Rows, con: duckdb.DuckDBPyConnection, windows: list[tuple[int, int]]) -> None:
    """Lexical turnover and semantic stabilisation over windows of the messages' text."""
    seen: set[str] = set()
    last: set[str] | None = None
    centroid_before: NDArray[np.float64] | None = None
    for lo, hi in windows:
        texts = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT text FROM messages WHERE text IS NOT NULL AND round BETWEEN ? AND ?",
                [lo, hi],
            ).fetchall()
        ]
        if not texts:
            continue
        grams = [_grams(t) for t in texts]
        active = set().union(*grams)
        rule = "words and word pairs, lower-cased, of distinct texts"
        if last is not None and active:
            rows.add("lexical_birth", lo, len(active - seen) / len(active), grams=rule)
            rows.add("lexical_death", lo, len(last - active) / len(last) if last else 0.0, grams=rule)
        centroid = np.mean([_vector(g) for g in grams], axis=0)
        norm = np.linalg.norm(centroid)
        if centroid_before is not None and norm > 0:
            cos = float(centroid @ centroid_before / (norm * np.linalg.norm(centroid_before)))
            rows.add(
                "semantic_stability", lo, cos, vectors=f"hashed bag of words ({_DIM} buckets), not embeddings"
            )
        seen |= active
        last = active
        centroid_before = centroid if norm > 0 else centroid_before


GRAPH_AGENTS = 100_000
"""Above this many agents the graph diagnostics use a hashed sample of about this many (their
`definition` says so); counts, Gini and participation always use every agent."""


def analyze_connection(
    con: duckdb.DuckDBPyConnection, n: int, rounds: int, field: str | None, window: int
) -> pa.Table:
    """The diagnostics of the run `con` is scoped to (`orchestrator.log.scope_to_run`)."""
    rows = _Rows([])
    every = max(1, math.ceil(n / GRAPH_AGENTS))
    last = max(rounds - 1, 0)
    windows = [(lo, min(lo + window - 1, last)) for lo in range(0, last + 1, window)]
    _prepare(con, window, every)
    sent = _counts(con, "sent", n, None)
    rows.add("agents", None, n)
    rows.add("participation", None, float((sent > 0).mean()) if n else 0.0, counts="messages and actions")
    rows.add("gini_sent", None, gini(sent), zeros="kept", population="every agent")
    received = _counts(con, "received", n, None)
    rows.add("gini_received", None, gini(received), zeros="kept", population="every agent")
    edge = "interaction: u->v per delivered message, unweighted, self-loops dropped"
    if every > 1:
        edge += f"; induced on a hashed sample of 1/{every} of the agents"
    whole = _reciprocity(con, None)
    if whole is not None:
        rows.add("reciprocity", None, whole, graph=edge)
    _graph_metrics(rows, _graph(con, None, every), None)
    before: set[Any] | None = None
    for k, (lo, hi) in enumerate(windows):
        active = _counts(con, "sent", n, k)
        rows.add("participation", lo, float((active > 0).mean()) if n else 0.0, rounds=[lo, hi])
        rows.add("gini_sent", lo, gini(active), zeros="kept", rounds=[lo, hi])
        part = _reciprocity(con, k)
        if part is not None:
            rows.add("reciprocity", lo, part, graph=edge, rounds=[lo, hi])
        top = _graph_metrics(rows, _graph(con, k, every), lo)
        if before is not None and (before or top):
            rows.add("influence_persistence", lo, _jaccard(before, top), k=5, rounds=[lo, hi])
        before = top
    _follow_metrics(rows, con, n)
    _state_metrics(rows, con, field)
    _text_metrics(rows, con, windows)
    metric, win, value, definition = zip(*rows.out) if rows.out else ((), (), (), ())
    return pa.table(
        {
            "metric": pa.array(list(metric), pa.string()),
            "window": pa.array(list(win), pa.int32()),
            "value": pa.array(list(value), pa.float64()),
            "definition": pa.array(list(definition), pa.string()),
        }
    )
