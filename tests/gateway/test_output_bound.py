"""What each endpoint's parser says a request may bill for output (gateway/output_bound.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.chat_request import parse_chat_request
from gateway.endpoint_request import (
    parse_completion_request,
    parse_embedding_request,
    parse_message_request,
    parse_response_request,
)
from gateway.errors import InvalidRequest
from gateway.output_bound import NO_OUTPUT, OutputBound

MESSAGES = [{"role": "user", "content": "hi"}]


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("fields", "bound"),
    [
        ({}, OutputBound(1, None)),
        ({"n": 50, "max_tokens": 50}, OutputBound(50, 50)),
        ({"n": 3, "max_completion_tokens": 70}, OutputBound(3, 70)),
        ({"max_completion_tokens": 10, "max_tokens": 2500}, OutputBound(1, 2500)),  # the largest cap
        ({"n": None, "max_tokens": None}, OutputBound(1, None)),
        ({"n": 4.0, "max_tokens": 8.0}, OutputBound(4, 8)),
    ],
)
def test_chat_bounds(fields: dict[str, Any], bound: OutputBound) -> None:
    assert parse_chat_request(body(model="m", messages=MESSAGES, **fields)).output_bound == bound


@pytest.mark.parametrize(
    ("fields", "bound"),
    [
        ({"prompt": "a b"}, OutputBound(1, None)),
        ({"prompt": "a b", "n": 2, "best_of": 5, "max_tokens": 16}, OutputBound(5, 16)),
        ({"prompt": "a b", "n": 3, "max_tokens": 16}, OutputBound(3, 16)),
        ({"prompt": ["a", "b", "c"], "n": 2, "max_tokens": 16}, OutputBound(6, 16)),
        ({"prompt": [[1, 2], [3]], "best_of": 4, "max_tokens": 0}, OutputBound(8, 0)),
        ({"prompt": [1, 2, 3], "max_tokens": 9}, OutputBound(1, 9)),  # one token array is one prompt
    ],
)
def test_completion_bounds(fields: dict[str, Any], bound: OutputBound) -> None:
    assert parse_completion_request(body(model="m", **fields)).output_bound == bound


def test_embeddings_responses_and_messages_bounds() -> None:
    assert parse_embedding_request(body(model="e", input=["a", "b"])).output_bound == NO_OUTPUT
    assert parse_response_request(body(model="m", input="hi", max_output_tokens=77)).output_bound == OutputBound(1, 77)
    assert parse_response_request(body(model="m", input="hi")).output_bound == OutputBound(1, None)
    message = parse_message_request(body(model="c", messages=MESSAGES, max_tokens=64), {})
    assert message.output_bound == OutputBound(1, 64)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": "50"}, "n"),
        ({"n": 0}, "n"),
        ({"n": True}, "n"),
        ({"n": 2.5}, "n"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_completion_tokens": "100"}, "max_completion_tokens"),
    ],
)
def test_a_count_the_gateway_cannot_read_is_a_400_naming_it(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_chat_request(body(model="m", messages=MESSAGES, **fields))
    assert raised.value.param == param and raised.value.status_code == 400
    with pytest.raises(InvalidRequest, match="best_of"):
        parse_completion_request(body(model="m", prompt="a", best_of=[2]))
    with pytest.raises(InvalidRequest, match="max_output_tokens"):
        parse_response_request(body(model="m", input="a", max_output_tokens={"x": 1}))
