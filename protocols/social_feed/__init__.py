"""An OASIS-style social feed (issue 9, in progress): so far, its recommenders' scores.

See `protocols.social_feed.ranking`; the world, actions and agents come next.
"""
