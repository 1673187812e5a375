"""The routing layer on its own: which deployment, how many attempts, when to give up."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from gateway.pricing import PriceBook
from gateway.routing.deployments import Deployment, build_deployment
from gateway.routing.failures import UpstreamFailure
from gateway.routing.router import Routed, Router, RoutingPolicy
from meterline.config import ModelDeployment

PRICES = PriceBook()


def deployment(group: str, index: int, model: str = "gpt-4o-mini", **params: object) -> Deployment:
    entry = ModelDeployment.model_validate(
        {
            "model_name": group,
            "litellm_params": {"model": f"openai/{model}", "api_base": f"http://up{index}.test/v1", **params},
        }
    )
    return build_deployment(index, entry)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(router: Router, group: str, call: Callable[[Deployment], Awaitable[str]]) -> Routed[str]:
    return asyncio.run(router.run(group, call))


def failing(statuses: dict[str, list[int]]) -> Callable[[Deployment], Awaitable[str]]:
    """Each deployment fails with its listed statuses in order, then answers with its id."""

    async def call(d: Deployment) -> str:
        queue = statuses.get(d.id, [])
        if queue:
            status = queue.pop(0)
            raise UpstreamFailure(f"status {status}", status=status, retry_after=0.0 if status == 429 else None)
        return d.id

    return call


def test_retries_retryable_failures_on_another_deployment() -> None:
    a, b = deployment("g", 0), deployment("g", 1)
    router = Router([a, b], RoutingPolicy(num_retries=2, backoff_base_s=0), PRICES, rng=random.Random(1))
    calls: list[str] = []

    async def call(d: Deployment) -> str:
        calls.append(d.id)
        if len(calls) == 1:
            raise UpstreamFailure("overloaded", status=503)
        return d.id

    routed = run(router, "g", call)
    assert len(routed.attempts) == 2
    assert calls[0] != calls[1]  # the retry went to the other deployment
    assert [a.outcome for a in routed.attempts] == ["retryable_error", "ok"]
    assert routed.fallback_used is False


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_terminal_failures_are_never_retried(status: int) -> None:
    router = Router([deployment("g", 0)], RoutingPolicy(num_retries=3, backoff_base_s=0), PRICES)
    with pytest.raises(UpstreamFailure) as raised:
        run(router, "g", failing({"g#0": [status]}))
    assert len(raised.value.attempts) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_up_to_num_retries(status: int) -> None:
    router = Router([deployment("g", 0)], RoutingPolicy(num_retries=2, backoff_base_s=0), PRICES)
    with pytest.raises(UpstreamFailure) as raised:
        run(router, "g", failing({"g#0": [status] * 5}))
    assert len(raised.value.attempts) == 3
    assert raised.value.status == status


def test_timeouts_and_connection_errors_are_retried() -> None:
    router = Router([deployment("g", 0)], RoutingPolicy(num_retries=1, timeout_s=0.05, backoff_base_s=0), PRICES)
    calls = 0

    async def call(d: Deployment) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1)
        return "ok"

    routed = run(router, "g", call)
    assert (routed.value, [a.outcome for a in routed.attempts]) == ("ok", ["retryable_error", "ok"])
    assert routed.attempts[0].error == "timeout"


def test_fallback_group_answers_when_the_primary_is_exhausted() -> None:
    primary, backup = deployment("big", 0, "gpt-4o"), deployment("small", 1)
    policy = RoutingPolicy(num_retries=1, fallbacks={"big": ["small"]}, backoff_base_s=0)
    router = Router([primary, backup], policy, PRICES)
    routed = run(router, "big", failing({"big#0": [500, 500]}))
    assert routed.value == "small#1"
    assert routed.fallback_used is True
    assert len(routed.attempts) == 3


def test_context_window_failure_goes_to_context_window_fallbacks_without_retry() -> None:
    small, large = deployment("small", 0), deployment("large", 1, "gpt-4.1")
    policy = RoutingPolicy(num_retries=3, context_window_fallbacks={"small": ["large"]}, backoff_base_s=0)
    router = Router([small, large], policy, PRICES)

    async def call(d: Deployment) -> str:
        if d.group == "small":
            raise UpstreamFailure("too long", status=400, context_window=True)
        return d.id

    routed = run(router, "small", call)
    assert (routed.value, len(routed.attempts), routed.fallback_used) == ("large#1", 2, True)


def test_failing_deployment_cools_down_after_allowed_fails() -> None:
    clock = FakeClock()
    bad, good = deployment("g", 0), deployment("g", 1)
    policy = RoutingPolicy(num_retries=0, allowed_fails=2, cooldown_time_s=30, backoff_base_s=0)
    router = Router([bad, good], policy, PRICES, rng=random.Random(3), clock=clock)

    async def call(d: Deployment) -> str:
        if d is bad:
            raise UpstreamFailure("down", status=503)
        return d.id

    failures = 0
    while failures < 2:
        try:
            run(router, "g", call)
        except UpstreamFailure:
            failures += 1
    assert router.stats(bad).cooldown_until == clock.now + 30
    assert {run(router, "g", call).value for _ in range(20)} == {"g#1"}
    clock.now += 31
    picked: Counter[str] = Counter()
    for _ in range(40):
        try:
            picked[run(router, "g", call).value] += 1
        except UpstreamFailure:
            picked["g#0"] += 1
    assert picked["g#0"] > 0  # back in rotation after the cooldown


def test_simple_shuffle_weighs_by_rpm() -> None:
    heavy, light = deployment("g", 0, rpm=900), deployment("g", 1, rpm=100)
    router = Router([heavy, light], RoutingPolicy(), PRICES, rng=random.Random(7))
    picks = Counter(run(router, "g", failing({})).value for _ in range(2000))
    assert 1700 < picks["g#0"] < 1900


def test_cost_based_routing_picks_the_cheapest_model() -> None:
    expensive, cheap = deployment("g", 0, "gpt-4o"), deployment("g", 1, "gpt-4o-mini")
    router = Router([expensive, cheap], RoutingPolicy(strategy="cost-based-routing"), PRICES)
    assert {run(router, "g", failing({})).value for _ in range(20)} == {"g#1"}


def test_latency_based_routing_prefers_the_faster_deployment() -> None:
    slow, fast = deployment("g", 0), deployment("g", 1)
    router = Router([slow, fast], RoutingPolicy(strategy="latency-based-routing"), PRICES, rng=random.Random(2))
    router.stats(slow).observe_latency(0.9)
    router.stats(fast).observe_latency(0.1)
    assert {run(router, "g", failing({})).value for _ in range(20)} == {"g#1"}


def test_least_busy_picks_the_idlest() -> None:
    busy, idle = deployment("g", 0), deployment("g", 1)
    router = Router([busy, idle], RoutingPolicy(strategy="least-busy"), PRICES)
    router.stats(busy).in_flight = 5
    assert {run(router, "g", failing({})).value for _ in range(20)} == {"g#1"}


def test_unknown_strategy_is_served_as_simple_shuffle() -> None:
    router = Router([deployment("g", 0)], RoutingPolicy(strategy="provider-budget-routing"), PRICES)
    assert router.strategy == "simple-shuffle"


def test_upstream_retry_after_sets_the_wait() -> None:
    router = Router([deployment("g", 0)], RoutingPolicy(num_retries=1), PRICES)
    failure = UpstreamFailure("slow down", status=429, retry_after=2.5)
    assert router._backoff(0, failure) == 2.5
