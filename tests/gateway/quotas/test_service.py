"""QuotaService in one process: admission, refusal (429 body and headers), settlement, team
limits. test_service_redis.py covers replicas sharing Redis and Redis outages."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.auth import AgentIdentity
from gateway.errors import error_response
from gateway.pricing import PriceBook
from gateway.quotas import Admission, QuotaExceeded, QuotaService
from meterline.config import Limits, MeterlineConfig

# $1 per million input tokens, $2 per million output: 100 in + 100 out = 300,000 nano-dollars.
PRICES = PriceBook({"cheap": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "max_output_tokens": 1000}})
T0 = datetime(2023, 11, 14, 22, 13, 30, tzinfo=UTC).timestamp()
"""30 s before a minute ends; 06:13:30 in Shanghai, so its day ends in 17h46m30s."""
SHANGHAI_DAY_LEFT = 17 * 3600 + 46 * 60 + 30


def redis_now() -> float:
    """A fixed instant near the real time (Redis expires keys at absolute times): 10 s into the
    next minute, so a test's few manual clock steps stay within one minute window."""
    return (int(time.time()) // 60 + 1) * 60 + 10.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def config(quota_store: dict[str, Any] | None = None) -> MeterlineConfig:
    return MeterlineConfig.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "teams": [{"id": "support", "limits": {"rpm": 5}}],
            "quota_store": quota_store or {},
        }
    )


def agent(team: str = "solo", agent_id: str = "bot", **limits: Any) -> AgentIdentity:
    return AgentIdentity(agent_id, team, limits=Limits(**limits))


async def admit(service: QuotaService, identity: AgentIdentity, max_tokens: int | None = 100) -> Admission:
    return await service.admit(identity, model="cheap", provider=None, input_tokens=100, max_output_tokens=max_tokens)


def test_unlimited_agents_get_no_headers_and_no_counters() -> None:
    service = QuotaService.from_config(config(), PRICES)
    identity = agent()
    assert not service.has_limits(identity)
    admission = asyncio.run(admit(service, identity))
    assert admission.headers == {}
    asyncio.run(service.settle(admission, tokens=10, usd=0.5))
    assert service.has_limits(agent(team="support"))


def test_rpm_refusal_is_an_openai_429_with_retry_after_and_rate_limit_headers() -> None:
    clock = Clock()
    service = QuotaService.from_config(config(), PRICES, clock=clock)
    identity = agent(rpm=2, tpm=1000)

    async def scenario() -> tuple[list[dict[str, str]], QuotaExceeded]:
        admissions = [await admit(service, identity) for _ in range(2)]
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)
        return [a.headers for a in admissions], refused.value

    headers, error = asyncio.run(scenario())
    assert headers[1] == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "600",
        "x-ratelimit-reset-tokens": "30s",
    }
    assert headers[0]["x-ratelimit-remaining-requests"] == "1"
    assert (error.status_code, error.retry_after) == (429, 30)
    assert error.response_headers == {**headers[1], "retry-after": "30"}
    response = error_response(error)
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    assert json.loads(bytes(response.body)) == {
        "error": {
            "message": "Rate limit reached for agent bot on requests per minute (rpm): Limit 2, Used 2, Requested 1. "
            "Please try again in 30s.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    clock.now += 30  # the next minute
    assert asyncio.run(admit(service, identity)).headers["x-ratelimit-remaining-requests"] == "1"


def test_tokens_per_day_refusal_waits_for_local_midnight() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(tokens_per_day=500)

    async def scenario() -> QuotaExceeded:
        await admit(service, identity)
        await admit(service, identity)
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)
        return refused.value

    error = asyncio.run(scenario())
    assert (error.code, error.error_type, error.retry_after) == ("tokens_per_day_exceeded", "tokens", SHANGHAI_DAY_LEFT)
    assert error.response_headers["x-ratelimit-reset-tokens"] == "17h46m30s"
    assert error.response_headers["x-ratelimit-remaining-tokens"] == "100"
    assert "agent bot on tokens per day (tokens_per_day): Limit 500, Used 400, Requested 200" in error.message


def test_budget_refusal_is_insufficient_quota_and_settle_frees_the_unused_worst_case() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(usd_per_day=0.0006)

    async def scenario() -> QuotaExceeded:
        first = await admit(service, identity)
        second = await admit(service, identity)  # $0.0006 reserved: the cap
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)
        await service.settle(first, tokens=120, usd=0.00012)
        await service.settle(second, tokens=120, usd=0.00012)
        await admit(service, identity)  # $0.00024 used + $0.0003 worst case fits again
        return refused.value

    error = asyncio.run(scenario())
    assert (error.code, error.error_type, error.status_code) == ("budget_exceeded", "insufficient_quota", 429)
    assert error.message == (
        "Budget exceeded for agent bot on USD per day (usd_per_day): Limit $0.0006, Used $0.0006, "
        "Requested $0.0003. Please try again in 17h46m30s."
    )


def test_team_limits_are_shared_by_the_team_and_named_in_the_refusal() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    first, second = agent("support", "bot-a"), agent("support", "bot-b")

    async def scenario() -> QuotaExceeded:
        for identity in (first, second, first, second, first):
            await admit(service, identity)
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, second)
        return refused.value

    error = asyncio.run(scenario())
    assert error.message.startswith("Rate limit reached for team support on requests per minute (rpm): Limit 5")


def test_release_returns_everything_once_and_settle_after_release_changes_nothing() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(rpm=10, tpm=1000, max_parallel=1)

    async def scenario() -> dict[str, str]:
        held = await admit(service, identity)
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)  # the one parallel slot is taken
        assert (refused.value.code, refused.value.retry_after) == ("rate_limit_exceeded", 1)
        await service.release(held)
        await service.release(held)
        await service.settle(held, tokens=999, usd=1.0)
        return (await admit(service, identity)).headers

    headers = asyncio.run(scenario())
    assert (headers["x-ratelimit-remaining-requests"], headers["x-ratelimit-remaining-tokens"]) == ("9", "800")


def test_settle_replaces_reserved_tokens_by_real_ones_and_keeps_the_request_counted() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(rpm=10, tpm=1000)

    async def scenario() -> dict[str, str]:
        await service.settle(await admit(service, identity), tokens=150, usd=0.0002)
        return (await admit(service, identity)).headers

    headers = asyncio.run(scenario())
    assert (headers["x-ratelimit-remaining-requests"], headers["x-ratelimit-remaining-tokens"]) == ("8", "650")


def test_settle_soon_settles_an_in_process_admission_at_once_and_only_once() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(rpm=10, tpm=1000, max_parallel=1)

    async def scenario() -> dict[str, str]:
        held = await admit(service, identity)
        assert service.settle_soon(held, tokens=150, usd=0.0002) is None
        assert service.settle_soon(held, tokens=999, usd=1.0) is None  # already settled: no change
        released = await admit(service, identity)  # the parallel slot is free again
        assert service.settle_soon(released, tokens=None, usd=0.0) is None  # a release
        return (await admit(service, identity)).headers

    headers = asyncio.run(scenario())
    # held: 1 request and 150 tokens; released: nothing; the last admission: 1 request, 200 tokens
    assert (headers["x-ratelimit-remaining-requests"], headers["x-ratelimit-remaining-tokens"]) == ("8", "650")


def test_a_request_larger_than_its_limit_is_refused_for_good_without_retry_after() -> None:
    """Its worst case alone exceeds the cap, so no wait can admit it: its own code, no
    `Retry-After` (a client honouring one retried forever), the refusing limit's headers."""
    service = QuotaService.from_config(config(), PRICES, clock=Clock())

    async def refuse(identity: AgentIdentity) -> QuotaExceeded:
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)  # 100 in + 100 out: 200 tokens, $0.0003
        return refused.value

    tokens = asyncio.run(refuse(agent(agent_id="small-tpm", tpm=150)))
    assert (tokens.code, tokens.error_type, tokens.retry_after) == ("request_exceeds_limit", "tokens", None)
    assert tokens.response_headers == {
        "x-ratelimit-limit-tokens": "150",
        "x-ratelimit-remaining-tokens": "150",
        "x-ratelimit-reset-tokens": "30s",
    }
    assert tokens.message.endswith("The request alone is larger than the limit; lower max_tokens or the input.")
    budget = asyncio.run(refuse(agent(agent_id="small-budget", usd_per_day=0.0001)))
    assert (budget.code, budget.error_type, budget.retry_after) == ("request_exceeds_limit", "insufficient_quota", None)
    assert budget.response_headers == {
        "x-ratelimit-limit-usd-day": "0.0001",
        "x-ratelimit-remaining-usd-day": "0.0001",
        "x-ratelimit-reset-usd-day": "17h46m30s",
    }
    response = error_response(budget)
    assert response.status_code == 429 and "retry-after" not in response.headers
    assert json.loads(bytes(response.body))["error"]["code"] == "request_exceeds_limit"


def test_every_refusal_carries_the_headers_of_the_limit_that_refused_it() -> None:
    """A budget, a monthly budget and a concurrency limit have no OpenAI header: `usd-day`,
    `usd-month` (exact dollars) and `parallel` (no reset: it frees when a request ends)."""
    service = QuotaService.from_config(config(), PRICES, clock=Clock())

    async def scenario() -> tuple[dict[str, str], QuotaExceeded, QuotaExceeded, QuotaExceeded]:
        budget = agent(agent_id="budget", usd_per_day=0.0006, usd_per_month=0.001)
        admitted = (await admit(service, budget)).headers
        await admit(service, budget)
        with pytest.raises(QuotaExceeded) as day:
            await admit(service, budget)
        monthly = agent(agent_id="monthly", usd_per_day=1, usd_per_month=0.0005)
        await admit(service, monthly)
        with pytest.raises(QuotaExceeded) as month:
            await admit(service, monthly)
        parallel = agent(agent_id="parallel", rpm=10, max_parallel=1)
        await admit(service, parallel)
        with pytest.raises(QuotaExceeded) as slots:
            await admit(service, parallel)
        return admitted, day.value, month.value, slots.value

    admitted, day, month, slots = asyncio.run(scenario())
    assert admitted == {
        "x-ratelimit-limit-usd-day": "0.0006",
        "x-ratelimit-remaining-usd-day": "0.0003",
        "x-ratelimit-reset-usd-day": "17h46m30s",
        "x-ratelimit-limit-usd-month": "0.001",
        "x-ratelimit-remaining-usd-month": "0.0007",
        "x-ratelimit-reset-usd-month": month.response_headers["x-ratelimit-reset-usd-month"],
    }
    assert day.code == "budget_exceeded" and day.response_headers["retry-after"] == str(SHANGHAI_DAY_LEFT)
    assert day.response_headers["x-ratelimit-remaining-usd-day"] == "0"
    assert (month.code, month.response_headers["x-ratelimit-limit-usd-month"]) == ("budget_exceeded", "0.0005")
    assert month.response_headers["x-ratelimit-remaining-usd-month"] == "0.0002"
    assert int(month.response_headers["retry-after"]) > SHANGHAI_DAY_LEFT
    assert (slots.code, slots.retry_after) == ("rate_limit_exceeded", 1)
    assert slots.response_headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-parallel": "1",
        "x-ratelimit-remaining-parallel": "0",
        "retry-after": "1",
    }
