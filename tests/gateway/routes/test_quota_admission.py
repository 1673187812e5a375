"""Quotas on the request path: reserve before the provider is called, settle after, refuse with 429."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager

import httpx
import openai
import pytest

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from gateway.testing.behaviour import MockBehaviour, ScriptedFailure
from gateway.testing.mock_openai import create_mock_openai
from meterline.config import parse_config
from tests.servers import serve_in_thread

KEY = "agent-key-quota-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
MESSAGES = [{"role": "user", "content": "one two three"}]


def make_gateway(provider: str, limits: str, team_limits: str = "{}") -> str:
    return f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
agents:
  - {{id: capped-bot, team: capped, key: {KEY}, limits: {limits}}}
teams:
  - {{id: capped, limits: {team_limits}}}
"""


@pytest.fixture
def behaviour() -> MockBehaviour:
    return MockBehaviour(accepted_keys={"sk-mock"})


@pytest.fixture
def provider(behaviour: MockBehaviour) -> Iterator[str]:
    with serve_in_thread(create_mock_openai(behaviour)) as url:
        yield url


def gateway_for(provider: str, limits: str, sink: InMemorySink, team_limits: str = "{}") -> AbstractContextManager[str]:
    config = parse_config(make_gateway(provider, limits, team_limits), "quota.yaml", environ={})
    return serve_in_thread(create_app(config, sink=sink))


def test_rpm_refuses_with_openai_429_and_headers(provider: str) -> None:
    sink = InMemorySink()
    with gateway_for(provider, "{rpm: 3}", sink) as url, httpx.Client(base_url=url) as client:
        body = {"model": "gpt", "messages": MESSAGES}
        ok = [client.post("/v1/chat/completions", json=body, headers=AUTH) for _ in range(3)]
        refused = client.post("/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES}, headers=AUTH)
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["2", "1", "0"]
    assert ok[0].headers["x-ratelimit-limit-requests"] == "3"
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
    assert "capped-bot" in error["message"] and KEY not in refused.text
    assert [r.http_status for r in sink.records] == [200, 200, 200, 429]


def test_openai_sdk_sees_rate_limit_error(provider: str) -> None:
    sink = InMemorySink()
    with gateway_for(provider, "{rpm: 1}", sink) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.response.headers["retry-after"]


def test_budget_refusal_is_insufficient_quota_and_one_that_never_fits_has_no_retry_after(
    provider: str, behaviour: MockBehaviour
) -> None:
    sink = InMemorySink()
    # Worst case of one request with max_tokens 1000 at gpt-4o-mini rates is ~$0.0006; with
    # max_tokens 80, ~$0.00006. The provider ignores max_tokens and bills 100 words out, so
    # the budget left after one request is less than the next one's worst case.
    behaviour.reply = " ".join(["word"] * 100)
    body = {"model": "gpt", "messages": MESSAGES, "max_tokens": 80}
    with gateway_for(provider, "{usd_per_day: 0.0001}", sink) as url, httpx.Client(base_url=url) as client:
        never = client.post("/v1/chat/completions", json={**body, "max_tokens": 1000}, headers=AUTH)
        admitted = client.post("/v1/chat/completions", json=body, headers=AUTH)
        refused = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert never.status_code == 429 and "retry-after" not in never.headers
    error = never.json()["error"]
    assert (error["code"], error["type"]) == ("request_exceeds_limit", "insufficient_quota")
    assert (never.headers["x-ratelimit-limit-usd-day"], never.headers["x-ratelimit-remaining-usd-day"]) == (
        "0.0001",
        "0.0001",
    )
    assert admitted.status_code == 200 and admitted.headers["x-ratelimit-limit-usd-day"] == "0.0001"
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("budget_exceeded", "insufficient_quota")
    assert 0 < float(refused.headers["x-ratelimit-remaining-usd-day"]) < 0.00006
    assert refused.headers["x-ratelimit-reset-usd-day"]


def test_settlement_charges_real_usage_not_the_reservation(provider: str, behaviour: MockBehaviour) -> None:
    sink = InMemorySink()
    with gateway_for(provider, "{tpm: 100000}", sink) as url, httpx.Client(base_url=url) as client:
        first = client.post(
            "/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES, "max_tokens": 5000}, headers=AUTH
        )
        # The next admission sees the first request's real tokens, not its 5000-token worst case.
        small = {"model": "gpt", "messages": MESSAGES, "max_tokens": 1}
        second = client.post("/v1/chat/completions", json=small, headers=AUTH)
    used = sink.records[0].input_tokens + sink.records[0].output_tokens
    assert first.status_code == second.status_code == 200
    remaining_after_second = int(second.headers["x-ratelimit-remaining-tokens"])
    reserved_second = 100000 - used - remaining_after_second
    assert 0 < reserved_second < 5000


def test_a_failed_request_gives_its_reservation_back(provider: str, behaviour: MockBehaviour) -> None:
    sink = InMemorySink()
    with gateway_for(provider, "{tokens_per_day: 3000}", sink) as url, httpx.Client(base_url=url) as client:
        behaviour.fail_next(ScriptedFailure(400, message="bad"))
        failed = client.post(
            "/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES, "max_tokens": 2900}, headers=AUTH
        )
        # Had the 2900-token reservation not been released, this would not fit in 3000.
        ok = client.post(
            "/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES, "max_tokens": 2900}, headers=AUTH
        )
    assert (failed.status_code, ok.status_code) == (400, 200)


def test_team_limit_applies_to_its_agents(provider: str) -> None:
    sink = InMemorySink()
    with gateway_for(provider, "{}", sink, team_limits="{rpm: 2}") as url, httpx.Client(base_url=url) as client:
        statuses = [
            client.post("/v1/chat/completions", json={"model": "gpt", "messages": MESSAGES}, headers=AUTH).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


def test_a_response_cache_hit_gives_its_reservation_back(provider: str) -> None:
    """A cache hit costs nothing: its worst case, its request and its parallel slot go back (they
    stayed taken for good before: with max_parallel 1 the next request got 429)."""
    text = make_gateway(provider, "{max_parallel: 1, rpm: 2, tokens_per_day: 100000}")
    config = parse_config(text + "response_cache: {backend: memory, model_groups: [gpt]}\n", "cache.yaml", environ={})
    body = {"model": "gpt", "messages": MESSAGES, "max_tokens": 10}
    with serve_in_thread(create_app(config, sink=InMemorySink())) as url, httpx.Client(base_url=url) as client:
        responses = [client.post("/v1/chat/completions", json=body, headers=AUTH) for _ in range(4)]
        other = client.post("/v1/chat/completions", json={**body, "max_tokens": 11}, headers=AUTH)
        third = client.post("/v1/chat/completions", json={**body, "max_tokens": 12}, headers=AUTH)
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.headers.get("x-meterline-cache") for r in responses] == [None, "hit", "hit", "hit"]
    assert other.status_code == 200  # the slot is free and the hits took no request of rpm 2
    assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limit_exceeded"
    assert third.headers["x-ratelimit-limit-requests"] == "2"


def test_the_worst_case_is_priced_at_the_dearest_model_that_may_answer(provider: str) -> None:
    """A group that falls back to a dearer model reserves at the dearer prices: a fallback's
    answer can never be billed beyond what was reserved (it was reserved at gpt-4o-mini prices)."""
    from gateway.pricing import PriceBook
    from gateway.token_usage import TokenUsage

    body = {"model": "gpt", "messages": MESSAGES, "max_tokens": 1000}
    worst = TokenUsage(input_tokens=len(json.dumps(body)) // 2 + 16, output_tokens=1000)
    prices = PriceBook()
    cheap, dear = prices.cost_usd("gpt-4o-mini", "openai", worst), prices.cost_usd("gpt-4o", "openai", worst)
    assert dear > 10 * cheap
    fallback = f"""  - model_name: big
    litellm_params: {{model: openai/gpt-4o, api_base: "{provider}/v1", api_key: sk-mock}}
router_settings: {{fallbacks: [{{gpt: [big]}}]}}
"""
    statuses = []
    for cap in (dear * 0.99, dear * 1.01):
        text = make_gateway(provider, f"{{usd_per_day: {cap!r}}}").replace("agents:\n", fallback + "agents:\n", 1)
        config = parse_config(text, "fallback.yaml", environ={})
        with serve_in_thread(create_app(config, sink=InMemorySink())) as url, httpx.Client(base_url=url) as client:
            statuses.append(client.post("/v1/chat/completions", content=json.dumps(body), headers=AUTH).status_code)
    assert statuses == [429, 200]
