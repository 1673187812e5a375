"""Which limits apply to a request, and what the request demands of each.

An agent's own limits and its team's limits (`teams:` in meterline.yaml) both apply; each is
an `AppliedLimit` with a scope, a limit name, a window and an integer cap. A request's demand
is its worst case: one request, its input tokens plus every generation the provider bills
(`n`, `best_of` x prompts; none for embeddings) times its output cap (`max_tokens` and the
like, or the model's output limit; gateway/output_bound.py), the cost of those tokens at the
model's prices (in nano-dollars), one parallel slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.auth import AgentIdentity
from gateway.pricing import PriceBook
from gateway.quotas.store import NANOS_PER_USD, CounterItem, Dimension, usd_to_nanos
from gateway.quotas.windows import Window, WindowCalendar
from gateway.token_usage import TokenUsage
from meterline.config import Limits, MeterlineConfig

Scope = Literal["agent", "team"]

DEFAULT_MAX_OUTPUT_TOKENS = 4096
"""Output reserved for a model the price table does not know, when the request sets no max_tokens."""
SETTLE_GRACE_S = 900.0
"""Counters outlive their window by this much, so a request that ends after the window still
settles into the window it was admitted in."""


@dataclass(frozen=True, slots=True)
class LimitSpec:
    name: str
    """The field of `Limits`."""
    dimension: Dimension
    window: Window | None
    """None: not a window but a level (concurrent requests)."""
    description: str


LIMIT_SPECS: tuple[LimitSpec, ...] = (
    LimitSpec("rpm", Dimension.REQUESTS, Window.MINUTE, "requests per minute"),
    LimitSpec("tpm", Dimension.TOKENS, Window.MINUTE, "tokens per minute"),
    LimitSpec("tokens_per_day", Dimension.TOKENS, Window.DAY, "tokens per day"),
    LimitSpec("usd_per_day", Dimension.USD, Window.DAY, "USD per day"),
    LimitSpec("usd_per_month", Dimension.USD, Window.MONTH, "USD per month"),
    LimitSpec("max_parallel", Dimension.PARALLEL, None, "concurrent requests"),
)


@dataclass(frozen=True, slots=True)
class AppliedLimit:
    scope: Scope
    scope_id: str
    spec: LimitSpec
    cap: int
    """In the dimension's unit: requests, tokens, nano-dollars or slots."""
    key: str = ""
    """The counter's name without its window: `agent:<id>:<limit>` (set by `limits_of`)."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class Demand:
    requests: int
    tokens: int
    usd_nanos: int
    parallel: int = 1

    def most(self, other: Demand) -> Demand:
        """Each amount the larger of the two (the worst case over models that may answer)."""
        return Demand(
            max(self.requests, other.requests),
            max(self.tokens, other.tokens),
            max(self.usd_nanos, other.usd_nanos),
            max(self.parallel, other.parallel),
        )

    def amount(self, dimension: Dimension) -> int:
        if dimension is Dimension.REQUESTS:
            return self.requests
        if dimension is Dimension.TOKENS:
            return self.tokens
        if dimension is Dimension.USD:
            return self.usd_nanos
        return self.parallel


def limits_of(scope: Scope, scope_id: str, limits: Limits) -> tuple[AppliedLimit, ...]:
    applied = []
    for spec in LIMIT_SPECS:
        value: float | int | None = getattr(limits, spec.name)
        if value is None:
            continue
        cap = round(value * NANOS_PER_USD) if spec.dimension is Dimension.USD else int(value)
        applied.append(AppliedLimit(scope, scope_id, spec, cap, f"{scope}:{scope_id}:{spec.name}"))
    return tuple(applied)


class QuotaPlan:
    """Limits per identity (team limits from the config) and the demand of a request."""

    def __init__(self, team_limits: dict[str, Limits], prices: PriceBook) -> None:
        self._teams = {team: limits_of("team", team, limits) for team, limits in team_limits.items()}
        self._prices = prices
        self._agents: dict[str, tuple[Limits, tuple[AppliedLimit, ...]]] = {}

    @classmethod
    def from_config(cls, config: MeterlineConfig, prices: PriceBook) -> QuotaPlan:
        return cls({team.id: team.limits for team in config.teams}, prices)

    def limits_for(self, identity: AgentIdentity) -> tuple[AppliedLimit, ...]:
        """The agent's own limits, then its team's."""
        cached = self._agents.get(identity.agent_id)
        if cached is None or (cached[0] is not identity.limits and cached[0] != identity.limits):
            cached = self._agents[identity.agent_id] = (
                identity.limits,
                limits_of("agent", identity.agent_id, identity.limits),
            )
        team = self._teams.get(identity.team)
        return cached[1] + team if team else cached[1]

    def demand(
        self,
        model: str,
        provider: str | None,
        input_tokens: int,
        max_output_tokens: int | None,
        completions: int = 1,
    ) -> Demand:
        """`completions` generations (chat's `n`, completions' `best_of` x prompts; 0 for
        embeddings) of at most `max_output_tokens` each (None: the model's output limit)."""
        entry = self._prices.entry(model, provider)
        model_max: int | None = None
        if entry is not None:
            raw = entry.get("max_output_tokens") or entry.get("max_tokens")
            model_max = raw if isinstance(raw, int) and raw > 0 else None
        if max_output_tokens is None:
            output = model_max or DEFAULT_MAX_OUTPUT_TOKENS
        else:
            output = min(max_output_tokens, model_max) if model_max else max_output_tokens
        input_tokens, output = max(0, input_tokens), max(0, output) * max(0, completions)
        usd = 0.0
        if entry is not None:
            usd = self._prices.cost_usd(model, provider, TokenUsage(input_tokens=input_tokens, output_tokens=output))
            if entry.get("output_cost_per_reasoning_token"):
                # Worst case: every output token at the higher of the output and reasoning rates.
                reasoning = TokenUsage(input_tokens=input_tokens, output_tokens=output, reasoning_output_tokens=output)
                usd = max(usd, self._prices.cost_usd(model, provider, reasoning))
        return Demand(requests=1, tokens=input_tokens + output, usd_nanos=usd_to_nanos(usd))


def counter_items(
    limits: Sequence[AppliedLimit], demand: Demand, calendar: WindowCalendar, now: float
) -> tuple[list[CounterItem], list[float]]:
    """One counter per limit, in the limits' order (`<limit key>:<window key>`), and the seconds
    until each one's window frees (0 for concurrency limits, which free when a request ends)."""
    items: list[CounterItem] = []
    frees_in: list[float] = []
    spans: dict[Window, tuple[str, float, float]] = {}
    for limit in limits:
        spec = limit.spec
        window = spec.window
        if window is None:
            items.append(CounterItem(limit.key, spec.dimension, demand.parallel, limit.cap, None))
            frees_in.append(0.0)
            continue
        span = spans.get(window)
        if span is None:
            found = calendar.span(window, now)
            span = spans[window] = (":" + found.key, found.end + SETTLE_GRACE_S, max(0.0, found.end - now))
        items.append(
            CounterItem(limit.key + span[0], spec.dimension, demand.amount(spec.dimension), limit.cap, span[1])
        )
        frees_in.append(span[2])
    return items, frees_in
