"""POST /v1/embeddings through both upstream paths, with the official openai SDK as the client."""

from __future__ import annotations

import asyncio

import openai
import pytest

from gateway.testing import ScriptedFailure, embedding_vector
from gateway.token_usage import TokenUsage
from gateway.tokens import count_text
from tests.gateway.routes.conftest import AGENT_KEY, LIMITED_KEY, PATHS, Stack, cost, group

MODEL = "text-embedding-3-small"
INPUTS = ["what did the support bot spend", "and the research agent"]  # 6 + 4 words


def sdk(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=AGENT_KEY, max_retries=0)


@pytest.mark.parametrize("path", PATHS)
def test_embeddings_meter_input_tokens_only(stack: Stack, path: str) -> None:
    result = sdk(stack).embeddings.create(model=group("embed", path), input=INPUTS, encoding_format="float")

    assert [d.embedding for d in result.data] == [embedding_vector(text, 8) for text in INPUTS]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (10, 10)
    record = stack.record
    assert (record.operation, record.model_requested, record.model) == ("embeddings", group("embed", path), MODEL)
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (10, 0, False)
    assert record.cost_usd == cost(MODEL, "openai", TokenUsage(input_tokens=10)) > 0
    assert (record.status, record.stream, record.attempts) == ("ok", False, 1)


@pytest.mark.parametrize("path", PATHS)
def test_async_client_and_a_retried_503(stack: Stack, path: str) -> None:
    stack.openai.fail_next(ScriptedFailure(503))

    async def run() -> int:
        async with openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=AGENT_KEY, max_retries=0) as client:
            result = await client.embeddings.create(model=group("embed", path), input="one two three")
            return result.usage.prompt_tokens

    assert asyncio.run(run()) == 3
    # One request per router attempt: LiteLLM's own retries stay off (the 503, then the success).
    assert [r.path for r in stack.openai.requests] == ["/v1/embeddings"] * 2
    assert (stack.record.input_tokens, stack.record.attempts) == (3, 2)


@pytest.mark.parametrize("path", PATHS)
def test_each_router_attempt_is_one_upstream_request(stack: Stack, path: str) -> None:
    stack.openai.fail_next(*[ScriptedFailure(503)] * 3)  # num_retries 2: three attempts, all failing

    with pytest.raises(openai.InternalServerError):
        sdk(stack).embeddings.create(model=group("embed", path), input="one two three")

    assert len(stack.openai.requests) == 3
    assert (stack.record.http_status, stack.record.attempts) == (503, 3)
    assert not stack.openai.failures


def test_terminal_error_is_not_retried(stack: Stack) -> None:
    stack.openai.fail_next(ScriptedFailure(400, message="input too odd"))

    with pytest.raises(openai.BadRequestError):
        sdk(stack).embeddings.create(model="embed", input="hi")

    assert (stack.record.http_status, stack.record.attempts) == (400, 1)


def test_agent_limited_to_other_models_is_refused(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=LIMITED_KEY, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="embed", input="hi")
    assert stack.record.http_status == 403
    assert stack.openai.requests == []


@pytest.mark.parametrize("path", PATHS)
def test_usage_is_counted_when_the_provider_reports_none(stack: Stack, path: str) -> None:
    """Both paths bill the gateway's count, flagged, and show the client those numbers
    (LiteLLM's path showed 0/0/0)."""
    stack.openai.omit_usage = True

    with sdk(stack) as client:
        result = client.embeddings.create(model=group("embed", path), input=INPUTS)

    assert sum(count_text(t) for t in INPUTS) == 10
    assert (stack.record.input_tokens, stack.record.output_tokens, stack.record.usage_estimated) == (10, 0, True)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (10, 10)
