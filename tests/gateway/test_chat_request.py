"""Chat bodies the providers would choke on are refused by the gateway with a 400 first."""

from __future__ import annotations

import json

import pytest

from gateway.chat_request import parse_chat_request
from gateway.errors import InvalidRequest


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": "user", "content": {"text": "hi"}}], "messages[0].content"),
        ([{"role": "user", "content": ["hi"]}], "messages[0].content"),
    ],
)
def test_chat_message_content_must_be_text_parts_or_null(messages: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_chat_request(body(model="m", messages=messages))
    assert raised.value.param == param


def test_chat_accepts_text_parts_and_null_content() -> None:
    parsed = parse_chat_request(
        body(
            model="m",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": None, "tool_calls": []},
            ],
        )
    )
    assert len(parsed.messages) == 2
