"""Endpoint bodies the providers would choke on are refused by the gateway with a 400 first."""

from __future__ import annotations

import json

import pytest

from gateway.endpoint_request import parse_completion_request, parse_response_request
from gateway.errors import InvalidRequest


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_empty_prompt_array_is_refused() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_completion_request(body(model="m", prompt=[]))
    assert raised.value.param == "prompt"


def test_token_array_prompts_are_accepted() -> None:
    assert parse_completion_request(body(model="m", prompt=[[1, 2], [3]])).model == "m"


def test_responses_input_items_must_be_objects() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_response_request(body(model="m", input=[{"role": "user", "content": "hi"}, 7]))
    assert raised.value.param == "input[1]"
