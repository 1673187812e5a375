"""How a deployment is picked inside a model group (LiteLLM's routing_strategy names)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.pricing import PriceBook
from gateway.routing.deployments import Deployment


@dataclass
class DeploymentStats:
    in_flight: int = 0
    latency_ewma_s: float | None = None
    failures: list[float] = field(default_factory=list)
    """Monotonic times of recent failures (for allowed_fails)."""
    cooldown_until: float = 0.0

    def observe_latency(self, seconds: float) -> None:
        self.latency_ewma_s = seconds if self.latency_ewma_s is None else 0.8 * self.latency_ewma_s + 0.2 * seconds


Picker = Callable[[Sequence[Deployment], dict[str, DeploymentStats]], Deployment]


def simple_shuffle(rng: random.Random) -> Picker:
    """Weighted random: `weight`, else `rpm`, else `tpm`, else equal (as LiteLLM weighs)."""

    def pick(candidates: Sequence[Deployment], stats: dict[str, DeploymentStats]) -> Deployment:
        if len(candidates) == 1:
            return candidates[0]  # the common case; a weighted draw costs ~10 us
        weights = [float(d.weight if d.weight != 1.0 else (d.rpm or d.tpm or 1)) for d in candidates]
        return rng.choices(list(candidates), weights=weights, k=1)[0]

    return pick


def least_busy(rng: random.Random) -> Picker:
    def pick(candidates: Sequence[Deployment], stats: dict[str, DeploymentStats]) -> Deployment:
        fewest = min(stats[d.id].in_flight for d in candidates)
        return rng.choice([d for d in candidates if stats[d.id].in_flight == fewest])

    return pick


def latency_based(rng: random.Random) -> Picker:
    """Lowest moving-average latency; a deployment never measured is tried first."""

    def pick(candidates: Sequence[Deployment], stats: dict[str, DeploymentStats]) -> Deployment:
        unmeasured = [d for d in candidates if stats[d.id].latency_ewma_s is None]
        if unmeasured:
            return rng.choice(unmeasured)
        return min(candidates, key=lambda d: stats[d.id].latency_ewma_s or 0.0)

    return pick


def cost_based(rng: random.Random, prices: PriceBook) -> Picker:
    """Cheapest input+output rate from the price table; unpriced deployments last."""

    def unit_cost(d: Deployment) -> float:
        entry = prices.entry(d.model, d.provider)
        if not entry:
            return float("inf")
        return float(entry.get("input_cost_per_token") or 0) + float(entry.get("output_cost_per_token") or 0)

    def pick(candidates: Sequence[Deployment], stats: dict[str, DeploymentStats]) -> Deployment:
        cheapest = min(unit_cost(d) for d in candidates)
        return rng.choice([d for d in candidates if unit_cost(d) == cheapest])

    return pick


def make_picker(name: str, rng: random.Random, prices: PriceBook) -> tuple[Picker, str]:
    """The picker for a strategy name, and the name actually used (unknown names fall back)."""
    if name == "least-busy" or name.startswith("usage-based-routing"):
        return least_busy(rng), "least-busy"
    if name == "latency-based-routing":
        return latency_based(rng), name
    if name == "cost-based-routing":
        return cost_based(rng, prices), name
    return simple_shuffle(rng), "simple-shuffle"
