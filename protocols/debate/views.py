"""The SQL that ships with every debate log: each view answers one question (README "Debate")."""

from __future__ import annotations

# Every agent's society, position and configuration, derived from its id and the study's grid
# (society s: question s % Q, strategy (s // Q) % S, mix (s // (Q*S)) % M, repeat s // (Q*S*M)).
_INFO = """WITH c AS (SELECT run_id, (config->'protocol'->>'size')::BIGINT AS size,
            from_json(config->'protocol'->'truths', '["DOUBLE"]') AS truths,
            json_array_length(config->'protocol'->'strategies')::BIGINT AS ns,
            json_array_length(config->'protocol'->'mixes')::BIGINT AS nm
        FROM runs WHERE protocol = 'debate'),
        a AS (SELECT g.run_id, g.agent, g.agent // c.size AS society, (g.agent % c.size)::INTEGER AS position,
            len(c.truths)::BIGINT AS nq, c.ns, c.nm, c.truths
        FROM agents g JOIN c USING (run_id))
    SELECT run_id, agent, society, position, (society % nq)::INTEGER AS question,
        list_extract(truths, (society % nq + 1)::INTEGER) AS truth,
        ((society // nq) % ns)::INTEGER AS strategy, ((society // (nq * ns)) % nm)::INTEGER AS mix,
        (society // (nq * ns * nm))::INTEGER AS repeat
    FROM a"""


def _conformity(others: bool) -> str:
    """The conformity view's SQL: the majority at round r over every agent of the society
    (MachineSoM's situation 2) or over the others only (situation 1)."""
    if others:  # each agent's own count of every answer, its own answer taken away
        majority = """o AS (SELECT p.run_id, p.society, p.round, p.agent, c.key,
                    c.n - (c.key = p.key)::INTEGER AS n
                FROM a p JOIN c ON c.run_id = p.run_id AND c.society = p.society AND c.round = p.round),
            m AS (SELECT run_id, society, round, agent, key
                FROM (SELECT *, max(n) OVER (PARTITION BY run_id, society, round, agent) AS top FROM o)
                WHERE top >= 2 AND n = top)"""
        own = " AND m.agent = p.agent"
    else:
        majority = """m AS (SELECT run_id, society, round, key
                FROM (SELECT *, max(n) OVER (PARTITION BY run_id, society, round) AS top FROM c)
                WHERE top >= 2 AND n = top)"""
        own = ""
    return f"""WITH a AS (SELECT *, coalesce(CAST(answer AS VARCHAR), 'none') AS key,
            CASE WHEN strpos(strategy, '|') > 0 THEN split_part(strategy, '|', position + 1) ELSE strategy END
                AS pattern
          FROM debate_answers),
        c AS (SELECT run_id, society, round, key, count(*) AS n FROM a GROUP BY ALL),
        {majority},
        t AS (SELECT p.run_id, p.strategy, p.round AS from_round, p.correct AS was, q.correct AS now,
                m.key IS NOT NULL AS conforms
              FROM a p JOIN a q ON q.run_id = p.run_id AND q.agent = p.agent AND q.round = p.round + 1
              LEFT JOIN m ON m.run_id = p.run_id AND m.society = p.society AND m.round = p.round
                  AND m.key = q.key{own}
              WHERE substr(q.pattern, q.round, 1) = '0')
    SELECT run_id, strategy, from_round, count(*) AS transitions, count(*) FILTER (conforms) AS conforming,
        avg(conforms::INTEGER) AS conformity,
        count(*) FILTER (conforms AND was AND now) AS tt,
        count(*) FILTER (conforms AND was AND NOT now) AS tf,
        count(*) FILTER (conforms AND NOT was AND now) AS ft,
        count(*) FILTER (conforms AND NOT was AND NOT now) AS ff
    FROM t GROUP BY ALL"""


VIEWS: dict[str, str] = {
    # Every agent's public answer per round (no answer: NULL), with its society and configuration.
    "debate_answers": f"""WITH info AS ({_INFO}),
        rounds AS (SELECT DISTINCT run_id, round FROM messages WHERE kind = 'answer'),
        cfg AS (SELECT run_id, config FROM runs WHERE protocol = 'debate')
    SELECT i.run_id, d.round, i.society, i.agent, i.position, i.question, i.repeat, i.mix,
        json_extract_string(c.config, '$.protocol.strategies[' || i.strategy || ']') AS strategy,
        m.value AS answer, coalesce(m.value = i.truth, false) AS correct, i.truth, m.text,
        'public' AS visibility
    FROM info i JOIN rounds d USING (run_id) JOIN cfg c USING (run_id)
    LEFT JOIN messages m ON m.run_id = i.run_id AND m.round = d.round AND m.sender = i.agent
        AND m.kind = 'answer'""",
    # Per society and round: its strict majority answer (MachineSoM), whether it is right,
    # how many distinct answers (consistency; no answer counts as one) and unanimity.
    "debate_by_round": """WITH a AS (SELECT *, coalesce(CAST(answer AS VARCHAR), 'none') AS key
            FROM debate_answers),
        c AS (SELECT run_id, society, round, key, any_value(answer) AS answer, count(*) AS n,
                any_value(truth) AS truth, any_value(strategy) AS strategy, any_value(mix) AS mix
              FROM a GROUP BY run_id, society, round, key),
        t AS (SELECT *, max(n) OVER (PARTITION BY run_id, society, round) AS top FROM c)
    SELECT run_id, society, round, any_value(strategy) AS strategy, any_value(mix) AS mix,
        sum(n) AS agents, count(*) AS distinct_answers, max(top) AS top_count,
        CASE WHEN max(top) >= 2 AND count(*) FILTER (n = max_top) = 1
            THEN any_value(answer) FILTER (n = max_top) END AS majority,
        coalesce(max(top) >= 2 AND count(*) FILTER (n = max_top) = 1
            AND any_value(answer) FILTER (n = max_top) = any_value(truth), false) AS correct,
        count(*) = 1 AND any_value(key) <> 'none' AS unanimous
    FROM (SELECT *, top AS max_top FROM t) GROUP BY run_id, society, round""",
    # Per round and configuration: accuracy of the majority vote and of single agents,
    # consistency (mean distinct answers) and the share of unanimous societies.
    "debate_accuracy_by_round": """WITH s AS (SELECT run_id, round, strategy, mix,
            avg(correct::INTEGER) AS accuracy,
            avg(distinct_answers) AS consistency, avg(unanimous::INTEGER) AS unanimous, count(*) AS societies
          FROM debate_by_round GROUP BY ALL),
        a AS (SELECT run_id, round, strategy, mix, avg(correct::INTEGER) AS agent_accuracy
          FROM debate_answers GROUP BY ALL)
    SELECT run_id, round, strategy, mix, societies, accuracy, agent_accuracy, consistency, unanimous
    FROM s JOIN a USING (run_id, round, strategy, mix)""",
    # Conformity per debate transition r -> r+1 (MachineSoM, "situation 2"): an agent conforms
    # when its answer at r+1 is among round r's top answers (count >= 2, all agents counted);
    # conforming transitions split by correctness before/after: tt, tf, ft, ff.
    "debate_conformity": _conformity(others=False),
    # The same with MachineSoM's "situation 1": the top answers of the *other* agents of the
    # society at round r (count >= 2 among them), the agent's own answer left out.
    "debate_conformity_others": _conformity(others=True),
    # Per round: how many agents changed their answer from the round before.
    "debate_changes": """SELECT q.run_id, q.round, count(*) AS agents,
        count(*) FILTER (p.answer IS DISTINCT FROM q.answer) AS changed
    FROM debate_answers p JOIN debate_answers q
        ON q.run_id = p.run_id AND q.agent = p.agent AND q.round = p.round + 1
    GROUP BY ALL""",
    # Private beliefs (DEBATE's second channel), never shown to any peer.
    "debate_beliefs": """SELECT m.run_id, m.round, m.sender AS agent, m.value AS belief,
        'private' AS visibility
    FROM messages m JOIN runs r ON r.run_id = m.run_id AND r.protocol = 'debate' WHERE m.kind = 'belief'""",
    # DEBATE's group convergence per society: SD of the final minus SD of the first public answers
    # and private beliefs (negative: the group converged).
    "debate_convergence": """WITH p AS (SELECT run_id, society, round, stddev_pop(answer) AS sd
            FROM debate_answers GROUP BY ALL),
        b AS (SELECT b.run_id, a.society, b.round, stddev_pop(b.belief) AS sd
            FROM debate_beliefs b JOIN (SELECT DISTINCT run_id, agent, society FROM debate_answers) a
                USING (run_id, agent) GROUP BY ALL),
        pe AS (SELECT run_id, society, arg_max(sd, round) - arg_min(sd, round) AS delta_sd_public
            FROM p GROUP BY ALL),
        be AS (SELECT run_id, society, arg_max(sd, round) - arg_min(sd, round) AS delta_sd_private
            FROM b GROUP BY ALL)
    SELECT pe.run_id, pe.society, pe.delta_sd_public, be.delta_sd_private
    FROM pe LEFT JOIN be USING (run_id, society)""",
}
