"""POST /v1/completions through both upstream paths, with the official openai SDK as the client."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from gateway.testing import ScriptedFailure
from gateway.token_usage import TokenUsage
from gateway.tokens import count_text
from tests.gateway.routes.conftest import AGENT_KEY, OPENAI_KEY, PATHS, REPLY, Stack, cost, group

PROMPT = "Say hello to the team"  # 5 words
MODEL = "gpt-3.5-turbo-instruct"


def sdk(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=AGENT_KEY, max_retries=0)


def assert_metered(stack: Stack, path: str, *, stream: bool, attempts: int = 1) -> None:
    record = stack.record
    assert (record.operation, record.model_requested, record.model, record.provider) == (
        "text_completion",
        group("instruct", path),
        MODEL,
        "openai",
    )
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (5, 5, False)
    assert record.cost_usd == cost(MODEL, "openai", TokenUsage(input_tokens=5, output_tokens=5))
    assert (record.status, record.http_status, record.stream, record.attempts) == ("ok", 200, stream, attempts)


@pytest.mark.parametrize("path", PATHS)
def test_completion_is_metered_and_priced(stack: Stack, path: str) -> None:
    completion = sdk(stack).completions.create(model=group("instruct", path), prompt=PROMPT)

    assert completion.choices[0].text == REPLY
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 5)
    assert_metered(stack, path, stream=False)
    assert stack.openai.requests[-1].body["model"] == MODEL


@pytest.mark.parametrize("path", PATHS)
def test_stream_usage_recorded_but_not_sent_unless_asked(stack: Stack, path: str) -> None:
    chunks = list(sdk(stack).completions.create(model=group("instruct", path), prompt=PROMPT, stream=True))

    assert "".join(c.choices[0].text for c in chunks if c.choices) == REPLY
    assert all(c.usage is None for c in chunks)
    assert stack.openai.requests[-1].body["stream_options"] == {"include_usage": True}
    assert_metered(stack, path, stream=True)
    assert stack.record.ttft_ms is not None


@pytest.mark.parametrize("path", PATHS)
def test_stream_with_include_usage_ends_with_the_usage_chunk(stack: Stack, path: str) -> None:
    chunks = list(
        sdk(stack).completions.create(
            model=group("instruct", path), prompt=PROMPT, stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 5)
    assert_metered(stack, path, stream=True)


@pytest.mark.parametrize("path", PATHS)
def test_async_client(stack: Stack, path: str) -> None:
    async def run() -> str:
        async with openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=AGENT_KEY, max_retries=0) as client:
            completion = await client.completions.create(model=group("instruct", path), prompt=PROMPT)
            stream = await client.completions.create(model=group("instruct", path), prompt=PROMPT, stream=True)
            streamed = "".join([c.choices[0].text async for c in stream if c.choices])
            return completion.choices[0].text + "|" + streamed

    assert asyncio.run(run()) == f"{REPLY}|{REPLY}"
    assert [r.stream for r in stack.sink.records] == [False, True]


@pytest.mark.parametrize("path", PATHS)
def test_retryable_failure_is_retried(stack: Stack, path: str) -> None:
    stack.openai.fail_next(ScriptedFailure(503))

    completion = sdk(stack).completions.create(model=group("instruct", path), prompt=PROMPT)

    assert completion.choices[0].text == REPLY
    assert_metered(stack, path, stream=False, attempts=2)


@pytest.mark.parametrize("path", PATHS)
def test_bad_request_is_not_retried(stack: Stack, path: str) -> None:
    stack.openai.fail_next(ScriptedFailure(400, message="prompt is too odd"))

    with pytest.raises(openai.BadRequestError) as raised:
        sdk(stack).completions.create(model=group("instruct", path), prompt=PROMPT)

    assert raised.value.status_code == 400
    assert "prompt is too odd" in raised.value.message
    record = stack.record
    assert (record.status, record.http_status, record.attempts, record.cost_usd) == ("error", 400, 1, 0.0)
    assert len(stack.openai.requests) == 1


@pytest.mark.parametrize("path", PATHS)
def test_rate_limit_passes_retry_after_through(stack: Stack, path: str) -> None:
    stack.openai.fail_next(*[ScriptedFailure(429, retry_after="30")] * 3)  # num_retries 2: three attempts

    with pytest.raises(openai.RateLimitError) as raised:
        sdk(stack).completions.create(model=group("instruct", path), prompt=PROMPT)

    assert raised.value.response.headers["retry-after"] == "30"
    assert raised.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    assert OPENAI_KEY not in raised.value.response.text
    assert (stack.record.http_status, stack.record.attempts) == (429, 3)


def test_usage_is_counted_when_the_provider_reports_none(stack: Stack) -> None:
    stack.openai.omit_usage = True

    chunks = list(sdk(stack).completions.create(model="instruct", prompt=PROMPT, stream=True))

    assert "".join(c.choices[0].text for c in chunks if c.choices) == REPLY
    record = stack.record
    assert (record.input_tokens, record.output_tokens) == (count_text(PROMPT), count_text(REPLY))
    assert record.usage_estimated is True
    assert record.cost_usd == cost(
        MODEL, "openai", TokenUsage(input_tokens=count_text(PROMPT), output_tokens=count_text(REPLY))
    )


@pytest.mark.parametrize("path", PATHS)
def test_counted_usage_is_what_the_client_sees(stack: Stack, path: str) -> None:
    """No usage from the provider: both paths bill the gateway's count, flag it, and show the
    client those numbers (LiteLLM's path showed 0/0/0)."""
    stack.openai.omit_usage = True

    with sdk(stack) as client:
        completion = client.completions.create(model=group("instruct", path), prompt=PROMPT)

    counted = (count_text(PROMPT), count_text(REPLY))
    assert counted == (5, 6)
    record = stack.record
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (5, 6, True)
    assert completion.usage is not None
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 6, 11)


def test_counted_usage_is_the_usage_chunk_the_client_asked_for(stack: Stack) -> None:
    stack.openai.omit_usage = True

    with sdk(stack) as client:
        stream = client.completions.create(
            model="instruct", prompt=PROMPT, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)

    assert [(c.usage.prompt_tokens, c.usage.completion_tokens) for c in chunks if c.usage] == [(5, 6)]
    record = stack.record
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (5, 6, True)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'{"model": "instruct"}', 400, "prompt"),
        (b'{"model": "instruct", "prompt": 7}', 400, "prompt"),
        (b'{"model": "instruct", "prompt": "hi", "stream": "yes"}', 400, "stream"),
        (b'{"model": "nope", "prompt": "hi"}', 404, "model"),
    ],
)
def test_bad_input_gets_openai_errors(stack: Stack, body: bytes, status: int, param: str | None) -> None:
    headers = {"authorization": f"Bearer {AGENT_KEY}", "content-type": "application/json"}
    response = httpx.post(f"{stack.url}/v1/completions", content=body, headers=headers)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert stack.record.http_status == status
    assert stack.openai.requests == []
