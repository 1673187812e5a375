"""POST /v1/responses through both upstream paths, with the official openai SDK as the client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.responses import FunctionToolParam, Response, ResponseStreamEvent, ResponseUsage

from gateway.testing import ScriptedFailure
from gateway.token_usage import TokenUsage
from gateway.tokens import count_messages, count_text
from tests.gateway.routes.conftest import AGENT_KEY, OPENAI_KEY, PATHS, REPLY, Stack, cost, group

MODEL = "gpt-4o-mini"
INPUT = "Say hello to the team"  # one message of 5 words: 3 + 5 = 8 tokens by the mocks' rule
CACHED, REASONING = 3, 2
# Output: the reply's 5 words plus the reasoning tokens.
USAGE = TokenUsage(
    input_tokens=8,
    output_tokens=5 + REASONING,
    cache_read_input_tokens=CACHED,
    reasoning_output_tokens=REASONING,
)


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key=AGENT_KEY, max_retries=0) as client:
        yield client


def with_cache_and_reasoning(stack: Stack) -> None:
    stack.openai.cached_tokens = CACHED
    stack.openai.reasoning_tokens = REASONING


def assert_usage(usage: ResponseUsage | None) -> None:
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (8, 7, 15)
    assert usage.input_tokens_details.cached_tokens == CACHED
    assert usage.output_tokens_details.reasoning_tokens == REASONING


def assert_metered(stack: Stack, path: str, *, stream: bool, attempts: int = 1) -> None:
    record = stack.record
    assert (record.operation, record.model_requested, record.model, record.provider) == (
        "chat",
        group("chat", path),
        MODEL,
        "openai",
    )
    assert (
        record.input_tokens,
        record.output_tokens,
        record.cache_read_input_tokens,
        record.cache_creation_input_tokens,
        record.reasoning_output_tokens,
        record.usage_estimated,
    ) == (8, 7, CACHED, 0, REASONING, False)
    assert record.cost_usd == cost(MODEL, "openai", USAGE) > 0
    assert (record.status, record.http_status, record.stream, record.attempts) == ("ok", 200, stream, attempts)
    assert record.usage_raw is not None and '"cached_tokens":3' in record.usage_raw


def final_response(events: list[ResponseStreamEvent]) -> Response:
    [completed] = [e for e in events if e.type == "response.completed"]
    assert completed.type == "response.completed"
    return completed.response


@pytest.mark.parametrize("path", PATHS)
def test_response_is_metered_and_priced(stack: Stack, client: openai.OpenAI, path: str) -> None:
    with_cache_and_reasoning(stack)

    response = client.responses.create(model=group("chat", path), input=INPUT)

    assert response.output_text == REPLY
    assert_usage(response.usage)
    assert_metered(stack, path, stream=False)
    assert stack.openai.requests[-1].path == "/v1/responses"
    assert stack.openai.requests[-1].body["model"] == MODEL


@pytest.mark.parametrize("path", PATHS)
def test_stream_ends_with_completed_and_is_metered(stack: Stack, client: openai.OpenAI, path: str) -> None:
    with_cache_and_reasoning(stack)

    events = []
    with client.responses.create(model=group("chat", path), input=INPUT, stream=True) as stream:
        for event in stream:
            events.append(event)
            if event.type == "response.completed":
                break

    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == REPLY
    assert events[0].type == "response.created"
    final = final_response(events)
    assert_usage(final.usage)
    assert_metered(stack, path, stream=True)
    assert stack.record.ttft_ms is not None


@pytest.mark.parametrize("path", PATHS)
def test_async_client(stack: Stack, path: str) -> None:
    with_cache_and_reasoning(stack)

    async def run() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=AGENT_KEY, max_retries=0) as client:
            response = await client.responses.create(model=group("chat", path), input=INPUT)
            stream = await client.responses.create(model=group("chat", path), input=INPUT, stream=True)
            events = [event async for event in stream]
            assert_usage(final_response(events).usage)
            streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            return response.output_text, streamed

    assert asyncio.run(run()) == (REPLY, REPLY)
    assert [r.stream for r in stack.sink.records] == [False, True]
    assert [r.cost_usd for r in stack.sink.records] == [cost(MODEL, "openai", USAGE)] * 2


@pytest.mark.parametrize("path", PATHS)
def test_retryable_failure_is_retried(stack: Stack, client: openai.OpenAI, path: str) -> None:
    with_cache_and_reasoning(stack)
    stack.openai.fail_next(ScriptedFailure(503))

    response = client.responses.create(model=group("chat", path), input=INPUT)

    assert response.output_text == REPLY
    assert_metered(stack, path, stream=False, attempts=2)
    assert len(stack.openai.requests) == 2


@pytest.mark.parametrize("path", PATHS)
def test_bad_request_is_not_retried(stack: Stack, client: openai.OpenAI, path: str) -> None:
    stack.openai.fail_next(ScriptedFailure(400, message="input is too odd"))

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=group("chat", path), input=INPUT)

    assert raised.value.status_code == 400
    assert "input is too odd" in raised.value.message
    record = stack.record
    assert (record.status, record.http_status, record.attempts, record.cost_usd) == ("error", 400, 1, 0.0)
    assert len(stack.openai.requests) == 1


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stream", [False, True])
def test_rate_limit_passes_retry_after_through(stack: Stack, client: openai.OpenAI, path: str, stream: bool) -> None:
    stack.openai.fail_next(*[ScriptedFailure(429, retry_after="30")] * 3)  # num_retries 2: three attempts

    with pytest.raises(openai.RateLimitError) as raised:
        client.responses.create(model=group("chat", path), input=INPUT, stream=stream)

    assert raised.value.response.headers["retry-after"] == "30"
    body = raised.value.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert (body["error"]["type"], body["error"]["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert OPENAI_KEY not in raised.value.response.text
    assert (stack.record.status, stack.record.http_status, stack.record.attempts) == ("error", 429, 3)
    assert len(stack.openai.requests) == 3


@pytest.mark.parametrize("path", PATHS)
def test_refused_provider_key_is_not_leaked(stack: Stack, client: openai.OpenAI, path: str) -> None:
    stack.openai.fail_next(ScriptedFailure(401, message=f"Incorrect API key provided: {OPENAI_KEY}"))

    with pytest.raises(openai.InternalServerError) as raised:
        client.responses.create(model=group("chat", path), input=INPUT)

    assert raised.value.status_code == 502
    assert raised.value.body["code"] == "upstream_auth_error"  # type: ignore[index]
    assert OPENAI_KEY not in raised.value.response.text
    assert (stack.record.http_status, stack.record.attempts) == (502, 1)


@pytest.mark.parametrize("path", PATHS)
def test_stream_cut_by_the_provider_ends_with_an_error_event(stack: Stack, client: openai.OpenAI, path: str) -> None:
    stack.openai.abort_stream_after = 4  # created, in_progress, output_item.added, content_part.added

    with client.responses.create(model=group("chat", path), input=INPUT, stream=True) as stream:
        events = list(stream)

    assert [e.type for e in events[:4]] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert events[-1].type == "error"
    assert events[-1].code == "upstream_unreachable"
    assert OPENAI_KEY not in events[-1].message
    record = stack.record
    assert (record.status, record.http_status, record.stream, record.attempts) == ("error", 502, True, 1)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stream", [False, True])
def test_usage_is_counted_and_flagged_when_the_provider_reports_none(
    stack: Stack, client: openai.OpenAI, path: str, stream: bool
) -> None:
    """LiteLLM's Responses stream fills in a count of its own when the provider sent none; the
    ledger records the gateway's count, flagged as estimated, the same on both paths."""
    stack.openai.omit_usage = True

    if stream:
        with client.responses.create(model=group("chat", path), input=INPUT, stream=True) as events:
            usage = final_response(list(events)).usage
    else:
        usage = client.responses.create(model=group("chat", path), input=INPUT).usage

    record = stack.record
    counted = TokenUsage(
        input_tokens=count_messages([{"role": "user", "content": INPUT}]), output_tokens=count_text(REPLY)
    )
    if not stream:  # the client sees the counts it is billed, on both paths (LiteLLM's were its own)
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (11, 6, 17)
    elif path == "direct":
        assert usage is None
    assert (record.input_tokens, record.output_tokens, record.usage_estimated, record.usage_raw) == (
        counted.input_tokens,
        counted.output_tokens,
        True,
        None,
    )
    assert record.cost_usd == cost(MODEL, "openai", counted) > 0


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'{"model": "chat"}', 400, "input"),
        (b'{"model": "chat", "input": 7}', 400, "input"),
        (b'{"model": "chat", "input": "hi", "stream": "yes"}', 400, "stream"),
        (b'{"model": "nope", "input": "hi"}', 404, "model"),
    ],
)
def test_bad_input_gets_openai_errors(stack: Stack, body: bytes, status: int, param: str | None) -> None:
    headers = {"authorization": f"Bearer {AGENT_KEY}", "content-type": "application/json"}
    response = httpx.post(f"{stack.url}/v1/responses", content=body, headers=headers)

    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert stack.record.http_status == status
    assert stack.openai.requests == []


def test_bad_agent_key_is_refused(stack: Stack) -> None:
    stranger = openai.OpenAI(base_url=f"{stack.url}/v1", api_key="not-a-key", max_retries=0)

    with stranger, pytest.raises(openai.AuthenticationError) as raised:
        stranger.responses.create(model="chat", input=INPUT)

    assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert stack.openai.requests == []


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_call(stack: Stack, client: openai.OpenAI, path: str, stream: bool) -> None:
    tool: FunctionToolParam = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {}},
        "strict": False,
    }

    if stream:
        events = client.responses.create(model=group("chat", path), input=INPUT, tools=[tool], stream=True)
        with events:
            response = final_response(list(events))
    else:
        response = client.responses.create(model=group("chat", path), input=INPUT, tools=[tool])

    [call] = response.output
    assert call.type == "function_call"
    assert (call.name, call.arguments) == ("lookup", stack.openai.tool_arguments)
    arguments = len(stack.openai.tool_arguments.split())
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (8, arguments)
    assert (stack.record.input_tokens, stack.record.output_tokens) == (8, arguments)
    assert stack.openai.requests[-1].body["tools"] == [tool]
