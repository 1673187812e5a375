"""Cache keys: the same answer-relevant request gives the same key, anything else a different one."""

from __future__ import annotations

import re
from typing import Any

from gateway.cache.keys import cache_key


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "chat-default",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
    }
    base.update(changes)
    return base


def test_key_is_versioned_namespaced_and_a_sha256() -> None:
    assert re.fullmatch(r"v1:chat-default:[0-9a-f]{64}", cache_key("chat-default", body()))


def test_same_request_same_key() -> None:
    assert cache_key("chat-default", body()) == cache_key("chat-default", body())


def test_delivery_and_attribution_fields_are_ignored() -> None:
    plain = cache_key("chat-default", body())
    assert cache_key("chat-default", body(stream=True, stream_options={"include_usage": True})) == plain
    assert cache_key("chat-default", body(stream=False)) == plain
    assert cache_key("chat-default", body(user="agent-7", metadata={"ticket": "T-1"})) == plain


def test_key_order_is_irrelevant_at_every_level() -> None:
    forward = {"a": 1, "b": {"x": [1, 2], "y": "z"}, "messages": []}
    backward = {"messages": [], "b": {"y": "z", "x": [1, 2]}, "a": 1}
    assert cache_key("g", forward) == cache_key("g", backward)


def test_answer_relevant_differences_change_the_key() -> None:
    plain = cache_key("chat-default", body())
    variants = [
        body(temperature=0.7),
        body(messages=[{"role": "user", "content": "What is the capital of Spain?"}]),
        body(n=2),
        body(seed=7),
        body(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        body(messages=[{"content": "What is the capital of France?", "role": "system"}]),
    ]
    keys = {cache_key("chat-default", v) for v in variants}
    assert plain not in keys
    assert len(keys) == len(variants)


def test_other_model_group_or_endpoint_other_key() -> None:
    plain = cache_key("chat-default", body())
    assert cache_key("chat-large", body()) != plain
    chat = cache_key("chat-default", body(), endpoint="/v1/chat/completions")
    messages = cache_key("chat-default", body(), endpoint="/v1/messages")
    assert len({plain, chat, messages}) == 3
