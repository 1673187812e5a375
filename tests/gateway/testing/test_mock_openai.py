"""The mock OpenAI provider, driven by the official `openai` SDK over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from openai.types.responses import FunctionToolParam

from gateway.testing import MockBehaviour, ScriptedFailure, create_mock_openai, embedding_vector
from tests.servers import serve_in_thread

KEY = "sk-test-1"
REPLY = "Hello from the mock provider."  # 5 words
# system: 3 + 3 words, user: 3 + 5 words -> 14 prompt tokens
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the team"},
]
PROMPT_TOKENS = 14
TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the docs",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    }
]


@pytest.fixture
def behaviour() -> MockBehaviour:
    return MockBehaviour(accepted_keys={KEY}, reply=REPLY)


@pytest.fixture
def url(behaviour: MockBehaviour) -> Iterator[str]:
    with serve_in_thread(create_mock_openai(behaviour)) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def test_chat_completion_usage_is_exact(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.cached_tokens = 4
    behaviour.reasoning_tokens = 2

    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=7)

    assert completion.model == "gpt-4o-mini"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (14, 7, 21)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 4
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 2
    assert behaviour.requests[0].body["seed"] == 7


def test_stream_sends_the_usage_chunk_only_when_asked(client: openai.OpenAI) -> None:
    with_usage = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    without = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))

    text = "".join(c.choices[0].delta.content or "" for c in with_usage if c.choices)
    assert text == REPLY
    assert with_usage[-1].choices == []
    assert with_usage[-1].usage is not None
    assert (with_usage[-1].usage.prompt_tokens, with_usage[-1].usage.completion_tokens) == (PROMPT_TOKENS, 5)
    assert [c.choices[0].finish_reason for c in with_usage[:-1]] == [None] * 6 + ["stop"]
    assert all(c.usage is None for c in with_usage[:-1])
    assert all(c.usage is None and c.choices for c in without)
    assert "".join(c.choices[0].delta.content or "" for c in without) == REPLY


def test_n_choices_multiply_completion_tokens(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=3)

    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert completion.usage is not None and completion.usage.completion_tokens == 15


def test_tools_return_a_tool_call_unless_tool_choice_is_none(client: openai.OpenAI) -> None:
    called = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    declined = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice="none",
    )

    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == ("search_docs", {"query": "mock"})
    assert called.usage is not None and called.usage.completion_tokens == 2  # '{"query": "mock"}'
    assert declined.choices[0].message.content == REPLY


def test_streamed_tool_call_arguments_join_up(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, stream=True))

    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    assert calls[0][0].function is not None and calls[0][0].function.name == "search_docs"
    arguments = "".join((call[0].function.arguments or "") for call in calls if call[0].function)
    assert json.loads(arguments) == {"query": "mock"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_json_schema_response_format_returns_json_content(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.json_reply = '{"city": "Paris", "population": 2102650}'
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    }

    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
    )

    content = completion.choices[0].message.content
    assert content is not None and json.loads(content) == {"city": "Paris", "population": 2102650}
    assert completion.usage is not None and completion.usage.completion_tokens == 4


def test_logprobs_cover_every_token(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        logprobs=True,
        top_logprobs=2,
    )

    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == REPLY
    assert [len(t.top_logprobs) for t in logprobs.content] == [2] * 5


def test_completions_and_embeddings(client: openai.OpenAI, url: str) -> None:
    legacy = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Write one short line")
    embedded = client.embeddings.create(model="text-embedding-3-small", input=["alpha beta", "gamma"])
    floats = httpx.post(
        f"{url}/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "alpha beta", "dimensions": 4, "encoding_format": "float"},
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()

    assert legacy.choices[0].text == REPLY
    assert legacy.usage is not None and (legacy.usage.prompt_tokens, legacy.usage.completion_tokens) == (4, 5)
    # The SDK asks for base64 and decodes it; both encodings carry the same float32 values.
    assert [d.embedding for d in embedded.data] == [embedding_vector("alpha beta", 8), embedding_vector("gamma", 8)]
    assert (embedded.usage.prompt_tokens, embedded.usage.total_tokens) == (3, 3)
    assert floats["data"][0]["embedding"] == embedding_vector("alpha beta", 4)
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    packed = base64.b64encode(struct.pack("<4f", *embedding_vector("alpha beta", 4))).decode()
    assert len(packed) == 24


def test_responses_api_non_stream_and_stream(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.cached_tokens = 3
    behaviour.reasoning_tokens = 4

    response = client.responses.create(model="gpt-4o-mini", input="Say hello to the team", instructions="Be brief")
    events = list(client.responses.create(model="gpt-4o-mini", input="Say hello to the team", stream=True))

    # instructions: 3 + 2, input: 3 + 5 -> 13; output: 5 words + 4 reasoning
    assert response.output_text == REPLY
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (13, 9, 22)
    assert response.usage.input_tokens_details.cached_tokens == 3
    assert response.usage.output_tokens_details.reasoning_tokens == 4
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == REPLY
    assert events[-1].type == "response.completed"
    final = events[-1].response
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (8, 9)


def test_responses_api_function_call(client: openai.OpenAI) -> None:
    tool: FunctionToolParam = {"type": "function", "name": "search_docs", "parameters": {}, "strict": False}

    response = client.responses.create(model="gpt-4o-mini", input="find it", tools=[tool])

    item = response.output[0]
    assert item.type == "function_call"
    assert (item.name, json.loads(item.arguments)) == ("search_docs", {"query": "mock"})


def test_models_lists_the_configured_models(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.models = ["gpt-4o-mini", "o3"]

    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "o3"]


def test_unknown_key_gets_openais_401_and_keys_rotate(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.accepted_keys.clear()
    behaviour.accepted_keys.add("sk-test-2")

    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    rotated = client.with_options(api_key="sk-test-2").chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
    )

    assert refused.value.status_code == 401
    body = refused.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert (body["error"]["type"], body["error"]["param"], body["error"]["code"]) == (
        "invalid_request_error",
        None,
        "invalid_api_key",
    )
    assert "sk-test-1" not in body["error"]["message"]
    assert rotated.choices[0].message.content == REPLY


def test_scripted_failures_map_to_sdk_exceptions_in_order(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.fail_next(
        ScriptedFailure(429, retry_after="7"), ScriptedFailure(503), ScriptedFailure(400, message="bad")
    )

    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    recovered = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert limited.value.response.headers["retry-after"] == "7"
    assert (limited.value.code, limited.value.type) == ("rate_limit_exceeded", "requests")
    assert unavailable.value.status_code == 503
    assert bad.value.body == {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}
    assert recovered.choices[0].message.content == REPLY
    assert len(behaviour.failures) == 0


def test_sdk_retries_honour_retry_after(url: str, behaviour: MockBehaviour) -> None:
    behaviour.fail_next(ScriptedFailure(429, retry_after="0"), ScriptedFailure(500))
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=2, timeout=10) as retrying:
        completion = retrying.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert completion.choices[0].message.content == REPLY
    assert [r.headers.get("x-stainless-retry-count") for r in behaviour.requests] == ["0", "1", "2"]


def test_every_request_is_recorded(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, user="agent-7")
    client.models.list()

    first, second = behaviour.requests
    assert (first.method, first.path, second.method, second.path) == (
        "POST",
        "/v1/chat/completions",
        "GET",
        "/v1/models",
    )
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.body == {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.2, "user": "agent-7"}
    assert second.body is None


def test_omit_usage_leaves_no_usage_anywhere(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.omit_usage = True

    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert completion.usage is None
    assert all(c.usage is None and c.choices for c in chunks)


def test_client_disconnect_cancels_the_stream(url: str, behaviour: MockBehaviour) -> None:
    behaviour.stream_delay_s = 0.05  # 8 events, so the stream is still running when the client leaves
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}

    with (
        httpx.Client(base_url=url) as http,
        http.stream("POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}) as response,
    ):
        lines = response.iter_lines()  # kept: a dropped iterator closes the connection when collected
        first = next(lines)
        behaviour.wait_until(lambda b: b.streams_in_flight == 1)
    behaviour.wait_until(lambda b: b.streams_in_flight == 0)

    assert first.startswith("data: {")
    assert (behaviour.streams_cancelled, behaviour.streams_completed) == (1, 0)


def test_abort_drops_the_connection_mid_stream(client: openai.OpenAI, behaviour: MockBehaviour) -> None:
    behaviour.abort_stream_after = 3
    received: list[str] = []

    with pytest.raises(httpx.RemoteProtocolError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content or "")

    assert "".join(received) == "Hello from"
    assert (behaviour.streams_aborted, behaviour.streams_completed) == (1, 0)


def test_async_client_streams(url: str) -> None:
    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=10) as client:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            return [c.choices[0].delta.content or "" async for c in stream]

    assert "".join(asyncio.run(run())) == REPLY


def test_fast_mode_serves_identical_bytes(url: str, behaviour: MockBehaviour) -> None:
    behaviour.fast = True
    behaviour.record = False
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    headers = {"Authorization": f"Bearer {KEY}"}

    with httpx.Client(base_url=url, headers=headers) as http:
        first, second = (http.post("/v1/chat/completions", json=body) for _ in range(2))
        streamed = http.post("/v1/chat/completions", json={**body, "stream": True})
    behaviour.wait_until(lambda b: b.streams_completed == 1)  # the client can finish reading first

    assert first.content == second.content
    assert first.json()["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert streamed.text.endswith("data: [DONE]\n\n")
    assert behaviour.requests == []
