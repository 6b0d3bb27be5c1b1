"""LLMAgent without a provider: how it reads answers, renders prompts, and what the offline models say."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.context import Context
from agents.llm import LLMAgent, parse_reply
from agents.message import Message
from orchestrator.llm.offline import answer
from protocols.gossip import LLMOpinionAgent, OpinionReply
from protocols.swarm_grid.agents import SwarmMove


def test_parse_reply_takes_json_in_fences_or_prose() -> None:
    assert parse_reply('```json\n{"action": "UP"}\n```', SwarmMove) == SwarmMove(action="UP")
    assert parse_reply('I go: {"action": "LEFT", "message": "hi"} ok', SwarmMove).message == "hi"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("I would go up.", "invalid_json: the answer holds no JSON object: I would go up."),
        ('{"action": "UP", "message": "cut', "invalid_json: Unterminated string starting at (character 28)"),
        (
            '{"action": "UP",, }',
            "invalid_json: Expecting property name enclosed in double quotes (character 16)",
        ),
        (
            '{"action": "JUMP"}',
            "schema: Invalid SwarmMove: action='JUMP': Input should be 'UP', 'DOWN', 'LEFT', 'RIGHT', 'STAY' or 'SWITCH'.",
        ),
        (
            '{"opinion": 1.5, "reason": "sure"}',
            "schema: Invalid OpinionReply: opinion=1.5: Input should be less than or equal to 1.",
        ),
        (
            '{"action": "UP", "mood": "calm"}',
            "schema: Invalid SwarmMove: unknown field 'mood'; a SwarmMove has: action, message.",
        ),
    ],
)
def test_parse_reply_says_what_is_wrong(text: str, error: str) -> None:
    model = OpinionReply if "opinion" in text else SwarmMove
    with pytest.raises(ValueError) as caught:
        parse_reply(text, model)
    assert str(caught.value).startswith(error)


def test_a_huge_answer_is_clipped_in_the_error() -> None:
    with pytest.raises(ValueError) as caught:
        parse_reply("x" * 1_000_000, SwarmMove)
    assert len(str(caught.value)) < 600 and str(caught.value).endswith("(1000000 chars)")


def test_the_prompt_holds_persona_instructions_schema_state_inbox_and_memory() -> None:
    agent = LLMOpinionAgent(
        id=3, opinion=0.25, persona="You are Ada.", history=["round 0: old", "round 1: older"]
    )
    agent.memory = 1
    inbox = [Message(kind="opinion", value=0.75, text="because", sender=5, round=1)]
    ctx = Context(2, 3, 0, instructions="Decide.", replies=(OpinionReply,))
    system, user = agent.render(inbox, ctx, OpinionReply)
    assert system["role"] == "system" and system["content"].startswith(
        "You are Ada.\n\nDecide.\n\nAnswer with one JSON"
    )
    assert json.loads(system["content"].split("(OpinionReply):\n", 1)[1]) == OpinionReply.model_json_schema()
    assert user["content"] == (
        "Round 2. You are agent 3.\n\nYour state:\nopinion: 0.25\n\n"
        'Messages you received:\n- agent 5: opinion 0.75 "because"\n\n'
        "Your previous replies:\nround 1: older"
    )


def test_act_without_a_client_says_how_to_run_it() -> None:
    import asyncio

    with pytest.raises(Exception, match=r"needs an LLM client in ctx.llm; run it with launch"):
        asyncio.run(LLMAgent(id=0).act([], Context(0, 0, 0, replies=(SwarmMove,))))


def test_echo_answers_the_last_user_message() -> None:
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}]
    assert answer("echo", msgs, {}) == "one two three"


def test_simulated_opinion_moves_halfway_to_what_it_heard() -> None:
    prompt = (
        "Your state:\nopinion: 0.2\n\nMessages you received:\n- agent 1: opinion 0.6\n- agent 2: opinion 1\n"
    )
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "OpinionReply", "schema": OpinionReply.model_json_schema()},
    }
    out = json.loads(
        answer("simulated", [{"role": "user", "content": prompt}], {"seed": 1, "response_format": fmt})
    )
    # 0.2 + 0.5 * (0.8 - 0.2) = 0.5, plus noise of sd 0.01
    assert abs(out["opinion"] - 0.5) < 0.05
    again = answer("simulated", [{"role": "user", "content": prompt}], {"seed": 1, "response_format": fmt})
    assert json.loads(again) == out  # seeded: the same prompt and seed give the same answer


def test_simulated_forager_steps_toward_visible_food() -> None:
    view = (
        "Current Step:\n"
        "     3   4   5\n"
        "  1  .   .   .   \n"
        "  2  .   Y   .   \n"
        "  3  .   .   F   \n"
        "\nYour current observation:\ncarrying_food: False\n"
    )
    steps = {SwarmMove.simulate(view, np.random.default_rng(s))["action"] for s in range(40)}
    # Toward F (down or right first) most of the time; a random step now and then.
    counts = [SwarmMove.simulate(view, np.random.default_rng(s))["action"] for s in range(200)]
    assert counts.count("DOWN") > 140
    assert steps <= {"UP", "DOWN", "LEFT", "RIGHT"}
