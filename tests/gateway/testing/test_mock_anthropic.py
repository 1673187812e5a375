"""The mock Anthropic provider, driven by the official `anthropic` SDK over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import httpx
import httpx2
import pytest

from gateway.testing import MockBehaviour, ScriptedFailure, create_mock_anthropic
from tests.servers import serve_in_thread

KEY = "sk-ant-test-1"
REPLY = "Hello from the mock provider."  # 5 words
SYSTEM = "You are terse."
MESSAGES: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Say hello to the team"}]
PROMPT_TOKENS = 14  # system 3 + 3 words, user 3 + 5 words
TOOLS: list[anthropic.types.ToolParam] = [
    {"name": "search_docs", "description": "Search the docs", "input_schema": {"type": "object", "properties": {}}}
]
# As the SDK yields them: it drops the `ping` event the mock (like the API) sends after content_block_start.
EVENTS = ["message_start", "content_block_start", *["content_block_delta"] * 5]
EVENTS += ["content_block_stop", "message_delta", "message_stop"]


@pytest.fixture
def behaviour() -> MockBehaviour:
    return MockBehaviour(accepted_keys={KEY}, reply=REPLY)


@pytest.fixture
def url(behaviour: MockBehaviour) -> Iterator[str]:
    with serve_in_thread(create_mock_anthropic(behaviour)) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def _create(client: anthropic.Anthropic) -> anthropic.types.Message:
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=256, system=SYSTEM, messages=MESSAGES)


def test_message_usage_splits_cache_reads_and_writes(client: anthropic.Anthropic, behaviour: MockBehaviour) -> None:
    behaviour.cached_tokens = 4
    behaviour.cache_creation_tokens = 2

    message = _create(client)

    assert message.model == "claude-sonnet-4-6"
    assert message.content[0].type == "text" and message.content[0].text == REPLY
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (8, 4, 2)
    assert usage.output_tokens == 5
    assert usage.input_tokens + 4 + 2 == PROMPT_TOKENS


def test_stream_event_sequence_and_final_usage(client: anthropic.Anthropic, behaviour: MockBehaviour) -> None:
    behaviour.cached_tokens = 4

    events = list(
        client.messages.create(model="claude-sonnet-4-6", max_tokens=256, system=SYSTEM, messages=MESSAGES, stream=True)
    )
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=256, system=SYSTEM, messages=MESSAGES) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()

    assert [e.type for e in events] == EVENTS
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert (start.message.usage.input_tokens, start.message.usage.cache_read_input_tokens) == (10, 4)
    assert delta.usage.output_tokens == 5
    assert text == REPLY
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.cache_read_input_tokens) == (10, 5, 4)
    assert final.stop_reason == "end_turn"


def test_tools_return_tool_use_unless_tool_choice_is_none(client: anthropic.Anthropic) -> None:
    called = client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES, tools=TOOLS)
    declined = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES, tools=TOOLS, tool_choice={"type": "none"}
    )
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES, tools=TOOLS) as s:
        streamed = s.get_final_message()

    block = called.content[0]
    assert block.type == "tool_use" and (block.name, block.input) == ("search_docs", {"query": "mock"})
    assert called.stop_reason == "tool_use"
    assert called.usage.output_tokens == 2
    assert declined.content[0].type == "text"
    streamed_block = streamed.content[0]
    assert streamed_block.type == "tool_use" and streamed_block.input == {"query": "mock"}


def test_rate_limit_maps_to_the_sdk_exception_with_retry_after(
    client: anthropic.Anthropic, behaviour: MockBehaviour
) -> None:
    behaviour.fail_next(ScriptedFailure(429, retry_after="11"), ScriptedFailure(529))

    with pytest.raises(anthropic.RateLimitError) as limited:
        _create(client)
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        _create(client)
    recovered = _create(client)

    assert limited.value.response.headers["retry-after"] == "11"
    body = limited.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert body["request_id"] == limited.value.response.headers["request-id"]
    assert (overloaded.value.status_code, overloaded.value.response.json()["error"]["type"]) == (
        529,
        "overloaded_error",
    )
    assert recovered.content[0].type == "text"


def test_unknown_key_is_refused_and_keys_rotate(client: anthropic.Anthropic, behaviour: MockBehaviour) -> None:
    behaviour.accepted_keys.discard(KEY)
    behaviour.accepted_keys.add("sk-ant-test-2")

    with pytest.raises(anthropic.AuthenticationError) as refused:
        _create(client)
    rotated = _create(client.with_options(api_key="sk-ant-test-2"))

    assert refused.value.response.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert rotated.usage.output_tokens == 5


def test_requests_are_recorded_and_need_anthropic_version(
    client: anthropic.Anthropic, behaviour: MockBehaviour, url: str
) -> None:
    _create(client)
    missing = httpx.post(
        f"{url}/v1/messages",
        json={"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": MESSAGES},
        headers={"x-api-key": KEY},
    )

    recorded = behaviour.requests[0]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["authorization"] == f"Bearer {KEY}"  # SDK 2.x; `x-api-key` is accepted too
    assert "anthropic-version" in recorded.headers
    assert recorded.body == {"model": "claude-sonnet-4-6", "max_tokens": 256, "system": SYSTEM, "messages": MESSAGES}
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


def test_omit_usage_leaves_the_usage_out(behaviour: MockBehaviour, url: str) -> None:
    behaviour.omit_usage = True
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": MESSAGES}

    message = httpx.post(f"{url}/v1/messages", json=body, headers=headers).json()
    stream = httpx.post(f"{url}/v1/messages", json={**body, "stream": True}, headers=headers).text

    assert "usage" not in message
    assert message["content"] == [{"type": "text", "text": REPLY}]
    assert '"usage"' not in stream
    assert [line[7:] for line in stream.splitlines() if line.startswith("event: ")] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_client_disconnect_cancels_and_abort_drops(client: anthropic.Anthropic, behaviour: MockBehaviour) -> None:
    behaviour.stream_delay_s = 0.05
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES) as stream:
        events = iter(stream)  # kept: a dropped iterator closes the connection when collected
        next(events)
        behaviour.wait_until(lambda b: b.streams_in_flight == 1)
    behaviour.wait_until(lambda b: b.streams_in_flight == 0)
    behaviour.stream_delay_s = 0.0
    behaviour.abort_stream_after = 4  # message_start, content_block_start, ping, one delta

    with (
        pytest.raises(httpx2.RemoteProtocolError),  # the transport anthropic 2.x uses
        client.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES) as aborted,
    ):
        for _ in aborted:
            pass

    assert (behaviour.streams_cancelled, behaviour.streams_aborted, behaviour.streams_completed) == (1, 1, 0)


def test_async_client(url: str) -> None:
    async def run() -> tuple[str, int]:
        client = anthropic.AsyncAnthropic(base_url=url, api_key=KEY, max_retries=0, timeout=10)
        async with (
            client,
            client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES) as stream,
        ):
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        return text, final.usage.output_tokens

    assert asyncio.run(run()) == (REPLY, 5)
