"""POST /v1/messages with the official anthropic SDK as the client: forwarded as it is to an
`anthropic/` deployment (the mock Anthropic), translated by LiteLLM for an OpenAI group."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageParam, RawMessageStreamEvent, Usage

from gateway.testing import MockBehaviour, ScriptedFailure
from gateway.token_usage import TokenUsage
from gateway.tokens import count_messages, count_text
from tests.gateway.routes.conftest import (
    AGENT_KEY,
    ANTHROPIC_KEY,
    LIMITED_KEY,
    OPENAI_KEY,
    REPLY,
    Stack,
    cost,
)

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-4o-mini"
MESSAGES: list[MessageParam] = [{"role": "user", "content": "Say hello to the team"}]  # 3 + 5 = 8 tokens
CACHE_READ, CACHE_CREATION = 3, 2
# Ledger meaning (OpenTelemetry GenAI): input includes cache reads and writes.
CLAUDE_USAGE = TokenUsage(
    input_tokens=8, output_tokens=5, cache_read_input_tokens=CACHE_READ, cache_creation_input_tokens=CACHE_CREATION
)
GPT_USAGE = TokenUsage(input_tokens=8, output_tokens=5, cache_read_input_tokens=CACHE_READ)
# (model group, the mock it reaches, the provider's model, provider): the direct Anthropic
# forward, and an OpenAI group translated by LiteLLM (the direct group and the LiteLLM one).
TARGETS = ["claude", "chat", "chat-litellm"]


def sdk(stack: Stack, key: str = AGENT_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.url, api_key=key, max_retries=0)


@pytest.fixture
def client(stack: Stack) -> Iterator[anthropic.Anthropic]:
    with sdk(stack) as client:
        yield client


def mock_of(stack: Stack, target: str) -> MockBehaviour:
    return stack.anthropic if target == "claude" else stack.openai


def with_cache(stack: Stack) -> None:
    stack.anthropic.cached_tokens = CACHE_READ
    stack.anthropic.cache_creation_tokens = CACHE_CREATION
    stack.openai.cached_tokens = CACHE_READ  # OpenAI has no cache writes


def expected(target: str) -> tuple[str, str, TokenUsage]:
    return (CLAUDE, "anthropic", CLAUDE_USAGE) if target == "claude" else (GPT, "openai", GPT_USAGE)


def assert_usage(usage: Usage, target: str) -> None:
    """Anthropic's meaning on the wire: input_tokens excludes cache reads and writes."""
    ledger = expected(target)[2]
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens or 0,
        usage.cache_creation_input_tokens or 0,
    ) == (
        ledger.input_tokens - ledger.cache_read_input_tokens - ledger.cache_creation_input_tokens,
        ledger.output_tokens,
        ledger.cache_read_input_tokens,
        ledger.cache_creation_input_tokens,
    )


def assert_metered(stack: Stack, target: str, *, stream: bool, attempts: int = 1) -> None:
    model, provider, usage = expected(target)
    record = stack.record
    assert (record.operation, record.model_requested, record.model, record.provider) == (
        "chat",
        target,
        model,
        provider,
    )
    assert (
        record.input_tokens,
        record.output_tokens,
        record.cache_read_input_tokens,
        record.cache_creation_input_tokens,
        record.reasoning_output_tokens,
        record.usage_estimated,
    ) == (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        0,
        False,
    )
    assert record.cost_usd == cost(model, provider, usage) > 0
    assert (record.status, record.http_status, record.stream, record.attempts) == ("ok", 200, stream, attempts)


def text_of(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@pytest.mark.parametrize("target", TARGETS)
def test_message_is_metered_and_priced(stack: Stack, client: anthropic.Anthropic, target: str) -> None:
    with_cache(stack)

    message = client.messages.create(model=target, max_tokens=64, messages=MESSAGES)

    assert text_of(message) == REPLY
    assert message.stop_reason == "end_turn"
    assert_usage(message.usage, target)
    assert_metered(stack, target, stream=False)


def test_direct_forward_injects_the_provider_key_and_model(stack: Stack, client: anthropic.Anthropic) -> None:
    client.messages.create(model="claude", max_tokens=64, messages=MESSAGES, system="Be brief")

    [request] = stack.anthropic.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == ANTHROPIC_KEY
    assert "authorization" not in request.headers
    assert request.headers["anthropic-version"] == client.default_headers["anthropic-version"]
    assert request.body == {"model": CLAUDE, "max_tokens": 64, "messages": MESSAGES, "system": "Be brief"}
    assert stack.record.input_tokens == 8 + 3 + 2  # the system prompt counts as one more message


def test_anthropic_version_is_filled_in_when_the_client_sends_none(stack: Stack) -> None:
    body = {"model": "claude", "max_tokens": 64, "messages": MESSAGES}
    response = httpx.post(f"{stack.url}/v1/messages", json=body, headers={"x-api-key": AGENT_KEY})

    assert response.status_code == 200
    assert response.headers["request-id"] == response.headers["x-request-id"] == stack.record.request_id
    assert stack.anthropic.requests[-1].headers["anthropic-version"] == "2023-06-01"


def test_anthropic_beta_header_is_passed_on(stack: Stack, client: anthropic.Anthropic) -> None:
    client.messages.create(
        model="claude",
        max_tokens=64,
        messages=MESSAGES,
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )

    assert stack.anthropic.requests[-1].headers["anthropic-beta"] == "prompt-caching-2024-07-31"


@pytest.mark.parametrize("target", ["chat", "chat-litellm"])
def test_openai_group_gets_the_request_translated(stack: Stack, client: anthropic.Anthropic, target: str) -> None:
    client.messages.create(model=target, max_tokens=64, messages=MESSAGES)

    [request] = stack.openai.requests
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.body["model"] == GPT
    assert stack.anthropic.requests == []


@pytest.mark.parametrize("target", TARGETS)
def test_stream_is_metered(stack: Stack, client: anthropic.Anthropic, target: str) -> None:
    with_cache(stack)

    with client.messages.stream(model=target, max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == REPLY
    assert final.stop_reason == "end_turn"
    assert_usage(final.usage, target)
    assert_metered(stack, target, stream=True)
    assert stack.record.ttft_ms is not None


@pytest.mark.parametrize("target", TARGETS)
def test_async_client(stack: Stack, target: str) -> None:
    with_cache(stack)

    async def run() -> tuple[str, str, str]:
        async with anthropic.AsyncAnthropic(base_url=stack.url, api_key=AGENT_KEY, max_retries=0) as client:
            message = await client.messages.create(model=target, max_tokens=64, messages=MESSAGES)
            async with client.messages.stream(model=target, max_tokens=64, messages=MESSAGES) as stream:
                streamed = "".join([text async for text in stream.text_stream])
                final = await stream.get_final_message()
            raw = await client.messages.create(model=target, max_tokens=64, messages=MESSAGES, stream=True)
            kinds = [event.type async for event in raw]
            assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
            assert_usage(final.usage, target)
            return text_of(message), streamed, text_of(final)

    assert asyncio.run(run()) == (REPLY, REPLY, REPLY)
    model, provider, usage = expected(target)
    assert [r.stream for r in stack.sink.records] == [False, True, True]
    assert [r.cost_usd for r in stack.sink.records] == [cost(model, provider, usage)] * 3


def test_bearer_token_authenticates_too(stack: Stack) -> None:
    with anthropic.Anthropic(base_url=stack.url, auth_token=LIMITED_KEY, max_retries=0) as client:
        message = client.messages.create(model="claude", max_tokens=64, messages=MESSAGES)

    assert text_of(message) == REPLY
    assert stack.record.agent_id == "limited-bot"
    assert stack.anthropic.requests[-1].headers["x-api-key"] == ANTHROPIC_KEY


def test_bad_agent_key_is_401_in_anthropic_shape(stack: Stack) -> None:
    with sdk(stack, key="not-a-key") as client, pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.create(model="claude", max_tokens=64, messages=MESSAGES)

    assert raised.value.status_code == 401
    body = raised.value.response.json()
    assert set(body) == {"type", "error"}
    assert (body["type"], body["error"]["type"]) == ("error", "authentication_error")
    assert stack.anthropic.requests == []


def test_agent_limited_to_other_models_is_refused(stack: Stack) -> None:
    with sdk(stack, key=LIMITED_KEY) as client, pytest.raises(anthropic.PermissionDeniedError) as raised:
        client.messages.create(model="chat", max_tokens=64, messages=MESSAGES)

    assert raised.value.response.json()["error"]["type"] == "permission_error"
    assert stack.record.http_status == 403
    assert stack.openai.requests == []


def test_unknown_model_is_404(stack: Stack, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="nope", max_tokens=64, messages=MESSAGES)

    body = raised.value.response.json()
    assert (body["type"], body["error"]["type"]) == ("error", "not_found_error")
    assert "nope" in body["error"]["message"]
    assert raised.value.response.headers["request-id"] == stack.record.request_id
    assert stack.record.http_status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", None),
        (b'{"model": "claude", "max_tokens": 64}', "messages"),
        (b'{"model": "claude", "max_tokens": 64, "messages": []}', "messages"),
        (b'{"model": "claude", "max_tokens": 64, "messages": [{"role": "system", "content": "x"}]}', "messages.0"),
        (b'{"model": "claude", "messages": [{"role": "user", "content": "hi"}]}', "max_tokens"),
        (b'{"model": "claude", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}', "max_tokens"),
    ],
)
def test_bad_body_is_400_in_anthropic_shape(stack: Stack, body: bytes, field: str | None) -> None:
    headers = {"x-api-key": AGENT_KEY, "content-type": "application/json", "anthropic-version": "2023-06-01"}
    response = httpx.post(f"{stack.url}/v1/messages", content=body, headers=headers)

    assert response.status_code == 400
    error = response.json()
    assert set(error) == {"type", "error"}
    assert (error["type"], error["error"]["type"]) == ("error", "invalid_request_error")
    if field is not None:
        assert error["error"]["message"].startswith(f"{field}")
    assert stack.record.http_status == 400
    assert stack.anthropic.requests == []


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_rate_limit_passes_retry_after_through(
    stack: Stack, client: anthropic.Anthropic, target: str, stream: bool
) -> None:
    mock = mock_of(stack, target)
    mock.fail_next(*[ScriptedFailure(429, retry_after="30")] * 3)  # num_retries 2: three attempts

    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model=target, max_tokens=64, messages=MESSAGES, stream=stream)

    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "30"
    body = raised.value.response.json()
    assert (body["type"], body["error"]["type"]) == ("error", "rate_limit_error")
    assert ANTHROPIC_KEY not in raised.value.response.text and OPENAI_KEY not in raised.value.response.text
    assert (stack.record.status, stack.record.http_status, stack.record.attempts) == ("error", 429, 3)
    assert len(mock.requests) == 3


@pytest.mark.parametrize(("target", "status"), [("claude", 529), ("claude", 503), ("chat", 503), ("chat-litellm", 503)])
def test_overloaded_upstream_is_retried(stack: Stack, client: anthropic.Anthropic, target: str, status: int) -> None:
    with_cache(stack)
    mock = mock_of(stack, target)
    mock.fail_next(ScriptedFailure(status))

    message = client.messages.create(model=target, max_tokens=64, messages=MESSAGES)

    assert text_of(message) == REPLY
    assert_metered(stack, target, stream=False, attempts=2)
    assert len(mock.requests) == 2


@pytest.mark.parametrize("target", TARGETS)
def test_upstream_bad_request_is_not_retried(stack: Stack, client: anthropic.Anthropic, target: str) -> None:
    mock = mock_of(stack, target)
    mock.fail_next(ScriptedFailure(400, message="messages are too odd"))

    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=target, max_tokens=64, messages=MESSAGES)

    assert raised.value.response.json()["error"]["type"] == "invalid_request_error"
    assert "messages are too odd" in raised.value.message
    assert (stack.record.status, stack.record.http_status, stack.record.attempts) == ("error", 400, 1)
    assert len(mock.requests) == 1


@pytest.mark.parametrize("target", TARGETS)
def test_refused_provider_key_is_not_leaked(stack: Stack, client: anthropic.Anthropic, target: str) -> None:
    secret = ANTHROPIC_KEY if target == "claude" else OPENAI_KEY
    mock_of(stack, target).fail_next(ScriptedFailure(401, message=f"invalid x-api-key {secret}"))

    with pytest.raises(anthropic.InternalServerError) as raised:
        client.messages.create(model=target, max_tokens=64, messages=MESSAGES)

    assert raised.value.status_code == 502
    assert secret not in raised.value.response.text
    assert (stack.record.http_status, stack.record.attempts) == (502, 1)


@pytest.mark.parametrize("target", TARGETS)
def test_stream_cut_by_the_provider_ends_with_an_error_event(
    stack: Stack, client: anthropic.Anthropic, target: str
) -> None:
    mock_of(stack, target).abort_stream_after = 3

    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.stream(model=target, max_tokens=64, messages=MESSAGES) as stream,
    ):
        for _ in stream:
            pass

    assert raised.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": raised.value.body["error"]["message"]},  # type: ignore[index]
    }
    assert ANTHROPIC_KEY not in str(raised.value.body) and OPENAI_KEY not in str(raised.value.body)
    record = stack.record
    assert (record.status, record.http_status, record.stream, record.attempts) == ("error", 502, True, 1)


@pytest.mark.parametrize("target", TARGETS)
def test_counted_usage_is_what_the_client_sees(stack: Stack, client: anthropic.Anthropic, target: str) -> None:
    """No usage from the provider (LiteLLM's adapter fills in zeros): every path bills the
    gateway's count, flags it, and shows the client those numbers (it showed 0/0 billed $0)."""
    mock_of(stack, target).omit_usage = True

    message = client.messages.create(model=target, max_tokens=64, messages=MESSAGES)

    counted = (count_messages([dict(m) for m in MESSAGES]), count_text(REPLY))
    assert counted == (11, 6)
    record = stack.record
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (11, 6, True)
    assert record.cost_usd == cost(*expected(target)[:2], TokenUsage(input_tokens=11, output_tokens=6)) > 0
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 6)


def test_usage_is_counted_when_the_provider_reports_none(stack: Stack, client: anthropic.Anthropic) -> None:
    stack.anthropic.omit_usage = True

    # The raw event stream: the SDK's `messages.stream` helper needs message_delta's usage.
    events: list[RawMessageStreamEvent] = list(
        client.messages.create(model="claude", max_tokens=64, messages=MESSAGES, stream=True)
    )
    texts = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert "".join(texts) == REPLY

    record = stack.record
    counted = TokenUsage(input_tokens=count_messages([dict(m) for m in MESSAGES]), output_tokens=count_text(REPLY))
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (
        counted.input_tokens,
        counted.output_tokens,
        True,
    )
    assert record.cost_usd == cost(CLAUDE, "anthropic", counted) > 0
