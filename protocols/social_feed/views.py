"""The SQL that ships with every social-feed log: each view answers one question."""

from __future__ import annotations

VIEWS: dict[str, str] = {
    # Every post created during the run, with its author, kind, the post clicked (parent) and the root.
    "feed_posts": """SELECT m.run_id, m.value::BIGINT AS post, m.receiver AS author, m.round,
        m.payload->>'kind' AS kind, (m.payload->>'parent')::BIGINT AS parent,
        (m.payload->>'root')::BIGINT AS root
    FROM messages m JOIN runs r ON r.run_id = m.run_id AND r.protocol = 'social_feed'
    WHERE m.kind = 'posted'""",
    # Every comment (flat, as in OASIS: on a post or a quote, or on what a repost reposted) with its
    # final score (likes minus dislikes).
    "feed_comments": """WITH c AS (SELECT m.run_id, m.value::BIGINT AS comment,
            (m.payload->>'post')::BIGINT AS post, m.sender AS author, m.round
            FROM messages m JOIN runs r ON r.run_id = m.run_id AND r.protocol = 'social_feed'
            WHERE m.kind = 'commented'),
        v AS (SELECT run_id, value::BIGINT AS comment,
            count(*) FILTER (kind = 'liked_comment') - count(*) FILTER (kind = 'disliked_comment') AS score
            FROM messages WHERE kind IN ('liked_comment', 'disliked_comment') GROUP BY ALL)
    SELECT c.*, coalesce(v.score, 0) AS score FROM c LEFT JOIN v USING (run_id, comment)""",
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
    # The herd experiment: per seeded post, its group (up, down, control: its seeded vote) and its
    # final score (likes minus dislikes, the seeded vote included).
    "herd_by_post": """WITH seeded AS (
            SELECT r.run_id, (v->>0)::BIGINT AS post, (v->>1)::INTEGER AS vote
            FROM runs r, unnest(from_json(r.config->'protocol'->'votes', '["JSON"]')) AS t(v)
            WHERE r.protocol = 'social_feed'),
        posts AS (SELECT run_id, unnest(range((config->'protocol'->>'seeded_posts')::BIGINT)) AS post
            FROM runs WHERE protocol = 'social_feed'),
        votes AS (SELECT m.run_id, m.value::BIGINT AS post,
                count(*) FILTER (m.kind = 'liked') - count(*) FILTER (m.kind = 'disliked') AS net
            FROM messages m WHERE m.kind IN ('liked', 'disliked') GROUP BY ALL)
    SELECT p.run_id, p.post, CASE s.vote WHEN 1 THEN 'up' WHEN -1 THEN 'down' ELSE 'control' END AS grp,
        coalesce(s.vote, 0) + coalesce(v.net, 0) AS score
    FROM posts p LEFT JOIN seeded s USING (run_id, post) LEFT JOIN votes v USING (run_id, post)""",
    # Stance polarization per round: mean, variance and share of users beyond +-0.5 (stances in [-1, 1]).
    "stance_by_round": """SELECT run_id, round,
        max(value) FILTER (name = 'stance_mean') AS mean,
        max(value) FILTER (name = 'stance_variance') AS variance,
        max(value) FILTER (name = 'stance_extreme') AS extreme_share
    FROM metrics WHERE name IN ('stance_mean', 'stance_variance', 'stance_extreme') GROUP BY run_id, round""",
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
