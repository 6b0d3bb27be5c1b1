"""The SQL that ships with every social-feed log: each view answers one question."""

from __future__ import annotations

VIEWS: dict[str, str] = {
    # Every post created during the run, with its author, kind, the post clicked (parent) and the root.
    "feed_posts": """SELECT m.run_id, m.value::BIGINT AS post, m.receiver AS author, m.round,
        m.payload->>'kind' AS kind, (m.payload->>'parent')::BIGINT AS parent,
        (m.payload->>'root')::BIGINT AS root
    FROM messages m JOIN runs r ON r.run_id = m.run_id AND r.protocol = 'social_feed'
    WHERE m.kind = 'posted'""",
    # Each repost or quote as a node of its root's cascade, at its depth (a repost of a repost is one deeper).
    "cascade_nodes": """WITH RECURSIVE d(run_id, post, depth) AS (
        SELECT run_id, post, 1 FROM feed_posts WHERE kind <> 'post' AND parent = root
        UNION ALL
        SELECT p.run_id, p.post, d.depth + 1
        FROM feed_posts p JOIN d ON p.run_id = d.run_id AND p.parent = d.post
    )
    SELECT p.run_id, p.root, p.post, p.author, p.round, d.depth
    FROM feed_posts p JOIN d USING (run_id, post)""",
    # OASIS's cascade measures per root and round: scale (users involved, the root's author included),
    # depth (greatest distance from the root) and max breadth (most nodes at one depth), cumulative.
    "cascade_by_round": """WITH r AS (SELECT DISTINCT run_id, round FROM metrics),
        roots AS (SELECT DISTINCT run_id, root FROM cascade_nodes),
        g AS (SELECT roots.run_id, roots.root, r.round FROM roots JOIN r USING (run_id)),
        per_depth AS (SELECT g.run_id, g.root, g.round, n.depth, count(*) AS nodes
            FROM g JOIN cascade_nodes n ON n.run_id = g.run_id AND n.root = g.root AND n.round <= g.round
            GROUP BY ALL),
        users AS (SELECT g.run_id, g.root, g.round, count(DISTINCT n.author) AS reposters
            FROM g JOIN cascade_nodes n ON n.run_id = g.run_id AND n.root = g.root AND n.round <= g.round
            GROUP BY ALL)
    SELECT p.run_id, p.root, p.round, u.reposters + 1 AS scale, max(p.depth) AS depth,
        max(p.nodes) AS max_breadth
    FROM per_depth p JOIN users u USING (run_id, root, round)
    GROUP BY p.run_id, p.root, p.round, u.reposters""",
    # Per round: follower inequality (Gini), posts, reposts, likes, follows, refused actions.
    "feed_activity_by_round": """SELECT run_id, round,
        max(value) FILTER (name = 'posts') AS posts, max(value) FILTER (name = 'reposts') AS reposts,
        max(value) FILTER (name = 'quotes') AS quotes, max(value) FILTER (name = 'likes') AS likes,
        max(value) FILTER (name = 'follows') AS follows, max(value) FILTER (name = 'refused') AS refused,
        max(value) FILTER (name = 'largest_cascade') AS largest_cascade,
        max(value) FILTER (name = 'follower_gini') AS follower_gini
    FROM metrics WHERE name IN ('posts', 'reposts', 'quotes', 'likes', 'follows', 'refused',
        'largest_cascade', 'follower_gini') GROUP BY run_id, round""",
}
