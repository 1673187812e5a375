"""Chat completions against a mock provider: disconnects, missing usage, size limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.app import create_app
from gateway.pricing import PriceBook
from gateway.telemetry.sink import InMemorySink
from gateway.testing.behaviour import MockBehaviour
from gateway.testing.mock_openai import create_mock_openai
from gateway.token_usage import TokenUsage
from gateway.tokens import count_messages, count_text
from meterline.config import parse_config
from meterline.usage_record import UsageRecord
from tests.servers import serve_in_thread

KEY = "agent-key-chat-0123456789"
MESSAGES = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
LONG_REPLY = " ".join(f"word{i}" for i in range(200))


@pytest.fixture
def behaviour() -> MockBehaviour:
    return MockBehaviour(accepted_keys={"sk-mock"}, reply=LONG_REPLY)


@pytest.fixture
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture(params=["direct", "litellm"])
def path(request: pytest.FixtureRequest) -> str:
    """Which upstream path serves the model group: the direct forward or LiteLLM's translation."""
    return str(request.param)


@pytest.fixture
def gateway(path: str, behaviour: MockBehaviour, sink: InMemorySink) -> Iterator[httpx.Client]:
    with serve_in_thread(create_mock_openai(behaviour)) as provider:
        info = "{meterline_upstream: litellm}" if path == "litellm" else "{}"
        config = parse_config(
            f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
    model_info: {info}
agents:
  - {{id: story-bot, team: fiction, key: {KEY}}}
response_cache: {{model_groups: [gpt], ttl_seconds: 60}}
""",
            "chat.yaml",
            environ={},
        )
        with serve_in_thread(create_app(config, sink=sink)) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client


def wait_for_record(sink: InMemorySink, timeout_s: float = 10.0) -> UsageRecord:
    deadline = time.monotonic() + timeout_s
    while not sink.records:
        assert time.monotonic() < deadline, "no usage record"
        time.sleep(0.01)
    [record] = sink.records
    return record


AUTH = {"Authorization": f"Bearer {KEY}"}


def test_client_disconnect_cancels_upstream_and_records_partial_usage(
    gateway: httpx.Client, behaviour: MockBehaviour, sink: InMemorySink
) -> None:
    behaviour.stream_delay_s = 0.02
    body = {"model": "gpt", "messages": MESSAGES, "stream": True}
    received = []
    with gateway.stream("POST", "/v1/chat/completions", json=body, headers=AUTH) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received.append(line)
            if len(received) == 5:
                break
    behaviour.wait_until(lambda b: b.streams_cancelled == 1)
    record = wait_for_record(sink)
    assert (record.status, record.http_status, record.error_type) == ("client_disconnected", 499, "client_disconnected")
    assert record.usage_estimated is True
    assert record.input_tokens == count_messages(MESSAGES)
    assert 0 < record.output_tokens < count_text(LONG_REPLY)
    assert record.cost_usd > 0
    assert record.ttft_ms is not None


def test_missing_usage_is_counted_and_flagged(
    gateway: httpx.Client, path: str, behaviour: MockBehaviour, sink: InMemorySink
) -> None:
    """No usage from the provider: on either path the gateway counts, flags the record, and shows
    the client the very numbers it bills (LiteLLM's path used to show 0/0/0)."""
    behaviour.omit_usage = True
    behaviour.reply = "The keeper lit the lamp."
    response = gateway.post("/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES}, headers=AUTH)
    assert response.status_code == 200
    record = wait_for_record(sink)
    counted = (count_messages(MESSAGES), count_text(behaviour.reply))
    assert counted == (17, 6)
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (17, 6, True), path
    assert record.cost_usd == PriceBook().cost_usd("gpt-4o-mini", "openai", TokenUsage(17, 6)) > 0
    usage = response.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (17, 6, 23), path


def test_reported_usage_is_billed_as_reported(
    gateway: httpx.Client, path: str, behaviour: MockBehaviour, sink: InMemorySink
) -> None:
    """The provider's own usage: billed as reported, never flagged, on either path (the mock
    counts words: 3 per message plus 9 words in; 5 words out)."""
    behaviour.reply = "The keeper lit the lamp."
    response = gateway.post("/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES}, headers=AUTH)
    record = wait_for_record(sink)
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (12, 5, False), path
    usage = response.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (12, 5, 17), path


def stream_usage(text: str) -> list[tuple[int, int, int]]:
    chunks = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    assert text.rstrip().endswith("data: [DONE]")
    return [(u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) for c in chunks if (u := c.get("usage"))]


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_without_provider_usage_is_estimated(
    gateway: httpx.Client, path: str, behaviour: MockBehaviour, sink: InMemorySink, include_usage: bool
) -> None:
    """LiteLLM fills in its own count when a stream ends without usage; the ledger must still say
    the gateway counted (it said `usage_estimated=false`), and the client who asked for usage
    gets the billed numbers, once."""
    behaviour.omit_usage = True
    behaviour.reply = "The keeper lit the lamp at dusk."
    body = {"model": "gpt", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": include_usage}}
    response = gateway.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200
    record = wait_for_record(sink)
    assert (count_messages(MESSAGES), count_text(behaviour.reply)) == (17, 8)
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (17, 8, True), path
    assert stream_usage(response.text) == ([(17, 8, 25)] if include_usage else []), path


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_with_provider_usage_is_not_estimated(
    gateway: httpx.Client, path: str, behaviour: MockBehaviour, sink: InMemorySink, include_usage: bool
) -> None:
    behaviour.reply = "The keeper lit the lamp at dusk."
    body = {"model": "gpt", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": include_usage}}
    response = gateway.post("/v1/chat/completions", json=body, headers=AUTH)
    record = wait_for_record(sink)
    assert (record.input_tokens, record.output_tokens, record.usage_estimated) == (12, 7, False), path
    assert stream_usage(response.text) == ([(12, 7, 19)] if include_usage else []), path


def test_body_over_the_limit_is_413(gateway: httpx.Client) -> None:
    huge = "x" * (10 * 1024 * 1024 + 1)
    response = gateway.post("/v1/chat/completions", content=huge, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_metrics_count_the_request(gateway: httpx.Client, sink: InMemorySink) -> None:
    gateway.post("/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES}, headers=AUTH)
    record = wait_for_record(sink)
    text = gateway.get("/metrics").text
    labels = 'http_status="200",model="gpt-4o-mini",model_group="gpt",status="ok",stream="false"'
    assert f"meterline_requests_total{{{labels}}} 1.0" in text
    assert f'meterline_tokens_total{{kind="input",model="gpt-4o-mini"}} {float(record.input_tokens)}' in text
    assert KEY not in text and "sk-mock" not in text


def test_cache_hit_costs_nothing_and_records_what_it_saved(
    gateway: httpx.Client, behaviour: MockBehaviour, sink: InMemorySink
) -> None:
    body = {"model": "gpt", "messages": [{"role": "user", "content": "Cache me, please."}]}
    first = gateway.post("/v1/chat/completions", json=body, headers=AUTH)
    second = gateway.post("/v1/chat/completions", json={**body, "user": "someone"}, headers=AUTH)
    assert first.status_code == second.status_code == 200
    assert second.headers["x-meterline-cache"] == "hit"
    assert second.json() == first.json()
    assert len(behaviour.requests) == 1  # the provider answered once
    paid, cached = sink.records
    assert (paid.cache_hit, cached.cache_hit) == (False, True)
    assert cached.cost_usd == 0.0
    assert cached.cost_saved_usd == paid.cost_usd > 0
    assert (cached.input_tokens, cached.output_tokens) == (paid.input_tokens, paid.output_tokens)
    assert cached.attempts == 0
    # A different question is a miss.
    gateway.post(
        "/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "Other"}]}, headers=AUTH
    )
    assert len(behaviour.requests) == 2
