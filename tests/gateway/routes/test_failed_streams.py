"""A stream the provider fails mid-way is billed what the provider reported, or nothing: never
the gateway's own count presented as a charge (issue 16)."""

from __future__ import annotations

import json

import httpx

from gateway.token_usage import TokenUsage
from tests.gateway.routes.conftest import AGENT_KEY, Stack, cost

OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
HEADERS = {"Authorization": f"Bearer {AGENT_KEY}"}
MESSAGES = [{"role": "user", "content": "Say hello to the team"}]  # 8 tokens by the mock's rule


def anthropic_stream(stack: Stack) -> httpx.Response:
    body = {"model": "claude", "max_tokens": 50, "messages": MESSAGES, "stream": True}
    return httpx.post(f"{stack.url}/v1/messages", json=body, headers=HEADERS)


def test_failed_anthropic_stream_without_usage_is_billed_nothing(stack: Stack) -> None:
    stack.anthropic.omit_usage = True
    stack.anthropic.stream_error = (2, b"event: error\ndata: " + json.dumps(OVERLOADED).encode() + b"\n\n")
    try:
        answer = anthropic_stream(stack)
    finally:
        stack.anthropic.stream_error = None
    assert answer.text.rstrip().split("\n\n")[-1].startswith("event: error\n")
    record = stack.record
    assert record.status == "error"
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (0, 0, 0.0)
    assert record.usage_estimated is False
    assert record.usage_raw is None


def test_failed_anthropic_stream_is_billed_the_usage_the_provider_reported(stack: Stack) -> None:
    stack.anthropic.stream_error = (2, b"event: error\ndata: " + json.dumps(OVERLOADED).encode() + b"\n\n")
    try:
        anthropic_stream(stack)
    finally:
        stack.anthropic.stream_error = None
    record = stack.record
    assert record.status == "error"
    # message_start reported the input and 1 output token (cumulative, as Anthropic sends it).
    assert (record.input_tokens, record.output_tokens) == (8, 1)
    assert record.usage_estimated is False
    usage = TokenUsage(input_tokens=8, output_tokens=1)
    assert record.cost_usd == cost("claude-haiku-4-5", "anthropic", usage)


def test_failed_chat_stream_is_billed_nothing(stack: Stack) -> None:
    # A chat stream reports usage only in its last chunk, which a failed stream never sends.
    error = {"error": {"message": "overloaded", "type": "server_error", "code": None}}
    stack.openai.stream_error = (2, b"data: " + json.dumps(error).encode() + b"\n\n")
    try:
        body = {"model": "chat", "messages": MESSAGES, "stream": True}
        answer = httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=HEADERS)
    finally:
        stack.openai.stream_error = None
    assert answer.status_code == 200
    record = stack.record
    assert record.status == "error"
    assert (record.input_tokens, record.output_tokens, record.cost_usd, record.usage_estimated) == (0, 0, 0.0, False)
