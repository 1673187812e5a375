"""Which limits apply (agent and team) and what a request demands of them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.auth import AgentIdentity
from gateway.pricing import PriceBook
from gateway.quotas.plan import DEFAULT_MAX_OUTPUT_TOKENS, SETTLE_GRACE_S, Demand, QuotaPlan, counter_items
from gateway.quotas.store import CounterItem, Dimension
from gateway.quotas.windows import ZoneCalendar
from meterline.config import Limits, MeterlineConfig

PRICES = PriceBook(
    {
        "cheap": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7, "max_output_tokens": 1000},
        "openai/thinker": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "output_cost_per_reasoning_token": 3e-6,
            "max_tokens": 500,
        },
    }
)


def plan() -> QuotaPlan:
    config = MeterlineConfig.model_validate(
        {"teams": [{"id": "support", "limits": {"usd_per_month": 1000, "rpm": 100}}, {"id": "idle"}]}
    )
    return QuotaPlan.from_config(config, PRICES)


def test_agent_limits_then_team_limits_with_integer_caps() -> None:
    identity = AgentIdentity("bot", "support", limits=Limits(rpm=20, usd_per_day=2.5, max_parallel=3))
    applied = plan().limits_for(identity)
    assert [(a.scope, a.scope_id, a.name, a.spec.dimension, a.cap) for a in applied] == [
        ("agent", "bot", "rpm", Dimension.REQUESTS, 20),
        ("agent", "bot", "usd_per_day", Dimension.USD, 2_500_000_000),
        ("agent", "bot", "max_parallel", Dimension.PARALLEL, 3),
        ("team", "support", "rpm", Dimension.REQUESTS, 100),
        ("team", "support", "usd_per_month", Dimension.USD, 1_000_000_000_000),
    ]


def test_no_limits_anywhere_is_empty_and_changed_limits_are_seen() -> None:
    quota_plan = plan()
    assert quota_plan.limits_for(AgentIdentity("free", "idle")) == ()
    assert quota_plan.limits_for(AgentIdentity("free", "nobody")) == ()
    assert [a.cap for a in quota_plan.limits_for(AgentIdentity("free", "idle", limits=Limits(tpm=5)))] == [5]


def test_demand_reserves_max_tokens_at_the_model_prices() -> None:
    # 100 input at $0.1/M + 200 output at $0.4/M = $0.00009 = 90,000 nano-dollars.
    assert plan().demand("cheap", None, 100, 200) == Demand(requests=1, tokens=300, usd_nanos=90_000)


def test_demand_without_max_tokens_reserves_the_model_output_limit() -> None:
    assert plan().demand("cheap", None, 100, None) == Demand(1, 1100, 10_000 + 400_000)
    # max_tokens beyond what the model can produce is clamped to the model's limit.
    assert plan().demand("cheap", None, 100, 50_000).tokens == 1100


def test_demand_prices_output_at_the_higher_reasoning_rate_and_finds_provider_entries() -> None:
    # 10 input at $1/M + 500 output at $3/M (reasoning) = $0.00151.
    assert plan().demand("thinker", "openai", 10, None) == Demand(1, 510, 1_510_000)


@given(
    input_tokens=st.integers(0, 10**6),
    max_tokens=st.one_of(st.none(), st.integers(0, 5_000)),
    completions=st.integers(0, 128),
)
def test_demand_counts_every_generation_at_its_cap(input_tokens: int, max_tokens: int | None, completions: int) -> None:
    """`n`, `best_of` x prompts: each generation up to the request's cap, clamped to the model's
    1,000; none for embeddings; dollars at the model's rates for all of it."""
    per_generation = 1000 if max_tokens is None else min(max_tokens, 1000)
    demand = plan().demand("cheap", None, input_tokens, max_tokens, completions)
    output = completions * per_generation
    assert demand.tokens == input_tokens + output
    assert abs(demand.usd_nanos - (input_tokens * 100 + output * 400)) <= 1  # float-priced nano-dollars


def test_unknown_model_demands_tokens_but_no_dollars() -> None:
    assert plan().demand("mystery", None, 7, None) == Demand(1, 7 + DEFAULT_MAX_OUTPUT_TOKENS, 0)
    assert plan().demand("mystery", None, -3, 10) == Demand(1, 10, 0)


def test_counter_items_name_scope_limit_and_window_and_outlive_the_window() -> None:
    identity = AgentIdentity("bot", "support", limits=Limits(tpm=1000, tokens_per_day=5000, max_parallel=2))
    quota_plan = plan()
    limits = quota_plan.limits_for(identity)
    now = datetime(2024, 3, 10, 15, 59, 30, tzinfo=UTC).timestamp()
    demand = Demand(1, 300, 90_000)
    items, frees_in = counter_items(limits, demand, ZoneCalendar("Asia/Shanghai"), now)
    minute = int(now // 60)
    day_end = datetime(2024, 3, 10, 16, tzinfo=UTC).timestamp()
    month_end = datetime(2024, 3, 31, 16, tzinfo=UTC).timestamp()
    assert items == [
        CounterItem(f"agent:bot:tpm:m{minute}", Dimension.TOKENS, 300, 1000, minute * 60 + 60 + SETTLE_GRACE_S),
        CounterItem("agent:bot:tokens_per_day:d2024-03-10", Dimension.TOKENS, 300, 5000, day_end + SETTLE_GRACE_S),
        CounterItem("agent:bot:max_parallel", Dimension.PARALLEL, 1, 2, None),
        CounterItem(f"team:support:rpm:m{minute}", Dimension.REQUESTS, 1, 100, minute * 60 + 60 + SETTLE_GRACE_S),
        CounterItem(
            "team:support:usd_per_month:M2024-03", Dimension.USD, 90_000, 1_000_000_000_000, month_end + SETTLE_GRACE_S
        ),
    ]
    assert frees_in == [30.0, 30.0, 0.0, 30.0, month_end - now]
