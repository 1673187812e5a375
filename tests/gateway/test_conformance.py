"""Conformance: the direct forward and LiteLLM's translation give the client the same responses,
errors and headers, and the ledger the same usage records and costs.

One mock OpenAI provider; two model groups pointing at it, identical except that `translated`
is forced through LiteLLM (`model_info.meterline_upstream: litellm`). Every case runs on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.pricing import PriceBook
from gateway.telemetry.sink import InMemorySink
from gateway.testing.behaviour import MockBehaviour, ScriptedFailure
from gateway.testing.mock_openai import create_mock_openai
from meterline.config import parse_config
from meterline.usage_record import UsageRecord
from tests.servers import serve_in_thread

KEY = "agent-key-conformance"
PATHS = ("direct", "translated")
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}},
}


def config_yaml(api_base: str) -> str:
    return f"""
model_list:
  - model_name: direct
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{api_base}", api_key: sk-mock}}
  - model_name: translated
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{api_base}", api_key: sk-mock}}
    model_info: {{meterline_upstream: litellm}}
router_settings: {{num_retries: 1, retry_after: 0}}
agents:
  - {{id: conformance-bot, team: qa, key: {KEY}}}
"""


@pytest.fixture(scope="module")
def behaviour() -> MockBehaviour:
    return MockBehaviour(accepted_keys={"sk-mock"})


@pytest.fixture(scope="module")
def provider_url(behaviour: MockBehaviour) -> Iterator[str]:
    with serve_in_thread(create_mock_openai(behaviour)) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture(scope="module")
def gateway(provider_url: str, sink: InMemorySink) -> Iterator[httpx.Client]:
    config = parse_config(config_yaml(provider_url), "conformance.yaml", environ={})
    with serve_in_thread(create_app(config, sink=sink)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh(behaviour: MockBehaviour, sink: InMemorySink) -> None:
    behaviour.failures.clear()
    behaviour.cached_tokens = behaviour.reasoning_tokens = 0
    sink.records.clear()
    sink.spans.clear()


def post(client: httpx.Client, group: str, **body: Any) -> httpx.Response:
    return client.post(
        "/v1/chat/completions", json={"model": group, **body}, headers={"Authorization": f"Bearer {KEY}"}
    )


def normal_response(data: dict[str, Any]) -> dict[str, Any]:
    """What a client relies on: choices, finish reasons, tool calls, usage, model."""
    choices = []
    for choice in data["choices"]:
        message = choice["message"]
        calls = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []]
        choices.append((choice["index"], message["role"], message.get("content"), calls, choice["finish_reason"]))
    usage = data["usage"]
    return {
        "object": data["object"],
        "model": data["model"],
        "choices": choices,
        "usage": (
            usage["prompt_tokens"],
            usage["completion_tokens"],
            usage["total_tokens"],
            (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
            (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
        ),
    }


def normal_stream(text: str) -> dict[str, Any]:
    chunks = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    assert text.rstrip().endswith("data: [DONE]")
    content = "".join((c["delta"].get("content") or "") for chunk in chunks for c in chunk["choices"] if c.get("delta"))
    finish = [c["finish_reason"] for chunk in chunks for c in chunk["choices"] if c.get("finish_reason")]
    usage = [(u["prompt_tokens"], u["completion_tokens"]) for chunk in chunks if (u := chunk.get("usage"))]
    return {"content": content, "finish": finish, "usage": usage, "ids": len({c["id"] for c in chunks})}


def ledger_view(record: UsageRecord) -> tuple[Any, ...]:
    return (
        record.model_requested in PATHS,
        record.model,
        record.provider,
        record.stream,
        record.input_tokens,
        record.output_tokens,
        record.cache_read_input_tokens,
        record.reasoning_output_tokens,
        record.usage_estimated,
        round(record.cost_usd, 15),
        record.status,
        record.http_status,
        record.attempts,
        record.error_type,
    )


def both(client: httpx.Client, sink: InMemorySink, **body: Any) -> tuple[list[httpx.Response], list[UsageRecord]]:
    responses = [post(client, group, **body) for group in PATHS]
    records = list(sink.records)
    assert [r.model_requested for r in records] == list(PATHS)
    return responses, records


CASES: dict[str, dict[str, Any]] = {
    "plain": {"messages": MESSAGES},
    "tools": {"messages": MESSAGES, "tools": TOOLS, "tool_choice": "auto"},
    "n=2": {"messages": MESSAGES, "n": 2},
    "json_schema": {"messages": MESSAGES, "response_format": SCHEMA, "seed": 7},
    "params passed through": {"messages": MESSAGES, "temperature": 0.2, "max_tokens": 50, "logprobs": True},
}


@pytest.mark.parametrize("case", list(CASES))
def test_non_stream_responses_and_records_match(gateway: httpx.Client, sink: InMemorySink, case: str) -> None:
    (direct, translated), (rec_direct, rec_translated) = both(gateway, sink, **CASES[case])
    assert direct.status_code == translated.status_code == 200
    assert normal_response(direct.json()) == normal_response(translated.json())
    assert ledger_view(rec_direct) == ledger_view(rec_translated)
    assert rec_direct.cost_usd > 0


def test_cached_and_reasoning_tokens_are_priced_the_same(
    gateway: httpx.Client, sink: InMemorySink, behaviour: MockBehaviour
) -> None:
    behaviour.cached_tokens, behaviour.reasoning_tokens = 8, 5
    (direct, translated), (rec_direct, rec_translated) = both(gateway, sink, messages=MESSAGES)
    assert normal_response(direct.json()) == normal_response(translated.json())
    assert (rec_direct.cache_read_input_tokens, rec_direct.reasoning_output_tokens) == (8, 5)
    assert ledger_view(rec_direct) == ledger_view(rec_translated)
    from gateway.token_usage import TokenUsage

    expected = PriceBook().cost_usd(
        "gpt-4o-mini",
        "openai",
        TokenUsage(
            input_tokens=rec_direct.input_tokens,
            output_tokens=rec_direct.output_tokens,
            cache_read_input_tokens=8,
            reasoning_output_tokens=5,
        ),
    )
    assert rec_direct.cost_usd == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("include_usage", [False, True])
def test_streams_match(gateway: httpx.Client, sink: InMemorySink, include_usage: bool) -> None:
    body: dict[str, Any] = {"messages": MESSAGES, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    (direct, translated), (rec_direct, rec_translated) = both(gateway, sink, **body)
    assert direct.headers["content-type"].startswith("text/event-stream")
    assert translated.headers["content-type"].startswith("text/event-stream")
    seen_direct, seen_translated = normal_stream(direct.text), normal_stream(translated.text)
    assert seen_direct == seen_translated
    assert len(seen_direct["usage"]) == (1 if include_usage else 0)
    assert ledger_view(rec_direct) == ledger_view(rec_translated)
    assert rec_direct.ttft_ms is not None and rec_translated.ttft_ms is not None


@pytest.mark.parametrize(
    ("failure", "status", "error_type"),
    [
        (ScriptedFailure(400, message="bad parameter"), 400, "invalid_request_error"),
        (ScriptedFailure(404, message="no such model"), 404, "invalid_request_error"),
    ],
)
def test_terminal_upstream_errors_match_and_are_not_retried(
    gateway: httpx.Client,
    sink: InMemorySink,
    behaviour: MockBehaviour,
    failure: ScriptedFailure,
    status: int,
    error_type: str,
) -> None:
    responses = []
    for group in PATHS:
        behaviour.fail_next(failure)
        responses.append(post(gateway, group, messages=MESSAGES))
    assert [r.status_code for r in responses] == [status, status]
    assert [r.json()["error"]["type"] for r in responses] == [error_type, error_type]
    assert all("bad parameter" in r.json()["error"]["message"] or status == 404 for r in responses)
    assert [r.attempts for r in sink.records] == [1, 1]
    assert ledger_view(sink.records[0]) == ledger_view(sink.records[1])


def test_upstream_429_exhausted_passes_retry_after(
    gateway: httpx.Client, sink: InMemorySink, behaviour: MockBehaviour
) -> None:
    responses = []
    for group in PATHS:
        behaviour.fail_next(ScriptedFailure(429, retry_after="0"), ScriptedFailure(429, retry_after="0"))
        responses.append(post(gateway, group, messages=MESSAGES))
    assert [r.status_code for r in responses] == [429, 429]
    assert [r.json()["error"]["type"] for r in responses] == ["rate_limit_error", "rate_limit_error"]
    assert [r.headers.get("retry-after") for r in responses] == ["1", "1"]
    assert [r.attempts for r in sink.records] == [2, 2]


def test_retryable_failure_then_success_records_two_attempts(
    gateway: httpx.Client, sink: InMemorySink, behaviour: MockBehaviour
) -> None:
    responses = []
    for group in PATHS:
        behaviour.fail_next(ScriptedFailure(503))
        responses.append(post(gateway, group, messages=MESSAGES))
    assert [r.status_code for r in responses] == [200, 200]
    assert normal_response(responses[0].json()) == normal_response(responses[1].json())
    assert [r.attempts for r in sink.records] == [2, 2]
    assert ledger_view(sink.records[0]) == ledger_view(sink.records[1])
    assert [len(s.attempts) for s in sink.spans] == [2, 2]


def test_provider_key_never_reaches_the_client(gateway: httpx.Client, behaviour: MockBehaviour) -> None:
    behaviour.fail_next(ScriptedFailure(400, message="your key sk-mock is not allowed here"))
    response = post(gateway, "direct", messages=MESSAGES)
    assert response.status_code == 400
    assert "sk-mock" not in response.text
