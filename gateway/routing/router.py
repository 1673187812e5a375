"""The one routing layer: pick a deployment, retry retryable failures with backoff, fall back
to other groups, cool down failing deployments. Both upstream paths run under it."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gateway.pricing import PriceBook
from gateway.routing.deployments import Deployment, SecretValue, pinned_key
from gateway.routing.failures import UpstreamFailure
from gateway.routing.strategies import DeploymentStats, make_picker
from meterline.config import RouterSettings
from meterline.secrets import LiveSecret

log = logging.getLogger(__name__)

T = TypeVar("T")

_FAIL_WINDOW_S = 60.0
_MAX_RETRY_AFTER_S = 10.0
AUTH_REFUSED = frozenset({401, 403})
"""A provider refusing the key: refresh it at once and, if it changed, retry once with the new one."""


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: Deployment
    started_ns: int
    ended_ns: int
    outcome: str
    """ok, retryable_error or terminal_error."""
    status: int | None = None
    error: str | None = None
    key_version: str | None = None
    """The version of the provider key the attempt sent (never the key)."""


@dataclass
class Routed(Generic[T]):
    value: T
    deployment: Deployment
    attempts: list[Attempt] = field(default_factory=list)
    fallback_used: bool = False


@dataclass(frozen=True)
class RoutingPolicy:
    strategy: str = "simple-shuffle"
    num_retries: int = 0
    timeout_s: float | None = None
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    context_window_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    allowed_fails: int = 3
    cooldown_time_s: float = 5.0
    backoff_base_s: float = 0.05

    @classmethod
    def from_settings(cls, rs: RouterSettings, litellm_settings: dict[str, Any]) -> RoutingPolicy:
        extra: dict[str, Any] = rs.model_extra or {}
        return cls(
            strategy=rs.routing_strategy,
            num_retries=rs.num_retries if rs.num_retries else int(litellm_settings.get("num_retries") or 0),
            timeout_s=rs.timeout or _float_or_none(litellm_settings.get("request_timeout")),
            fallbacks=_merge(rs.fallbacks),
            context_window_fallbacks=_merge(extra.get("context_window_fallbacks") or []),
            allowed_fails=int(extra.get("allowed_fails") or 3),
            cooldown_time_s=float(extra.get("cooldown_time") or 5.0),
            backoff_base_s=float(extra.get("retry_after") or 0.05),
        )


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _merge(entries: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for entry in entries:
        for group, targets in entry.items():
            merged.setdefault(group, []).extend(targets)
    return merged


class Router:
    def __init__(
        self,
        deployments: list[Deployment],
        policy: RoutingPolicy,
        prices: PriceBook,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._groups: dict[str, list[Deployment]] = {}
        for d in deployments:
            self._groups.setdefault(d.group, []).append(d)
        self._stats = {d.id: DeploymentStats() for d in deployments}
        self._rng = rng or random.Random()
        self._pick, self.strategy = make_picker(policy.strategy, self._rng, prices)
        self._clock = clock
        self._pinned: dict[str, tuple[object, Deployment]] = {}
        self._answerers: dict[str, tuple[tuple[str, str], ...]] = {}

    @property
    def groups(self) -> list[str]:
        return list(self._groups)

    def has_group(self, group: str) -> bool:
        return group in self._groups

    def deployments(self, group: str) -> list[Deployment]:
        return list(self._groups.get(group, []))

    def answerers(self, group: str) -> tuple[tuple[str, str], ...]:
        """Every (model, provider) that may answer a request for `group`: its deployments, then
        its fallbacks' and its context-window fallbacks', once each, in that order (the quota's
        worst case is priced at the dearest). Fixed by the config, so worked out once per group."""
        known = self._answerers.get(group)
        if known is None:
            policy = self.policy
            chain = [group, *policy.fallbacks.get(group, ()), *policy.context_window_fallbacks.get(group, ())]
            pairs = ((d.model, d.provider) for g in chain for d in self._groups.get(g, ()))
            known = self._answerers[group] = tuple(dict.fromkeys(pairs))
        return known

    def stats(self, deployment: Deployment) -> DeploymentStats:
        return self._stats[deployment.id]

    def _candidates(self, group: str, tried: set[str]) -> list[Deployment]:
        now = self._clock()
        members = self._groups.get(group, [])
        healthy = [d for d in members if self._stats[d.id].cooldown_until <= now]
        fresh = [d for d in healthy if d.id not in tried]
        # Prefer an untried healthy deployment; if every one is cooling down, try anyway rather
        # than fail a request that might well succeed.
        return fresh or healthy or members

    def _record_failure(self, d: Deployment) -> None:
        stats = self._stats[d.id]
        now = self._clock()
        stats.failures = [t for t in stats.failures if now - t < _FAIL_WINDOW_S] + [now]
        if len(stats.failures) >= self.policy.allowed_fails:
            stats.cooldown_until = now + self.policy.cooldown_time_s
            stats.failures.clear()
            log.warning("deployment %s cooling down for %.0f s", d.id, self.policy.cooldown_time_s)

    def _backoff(self, retry: int, failure: UpstreamFailure) -> float:
        if failure.retry_after is not None and failure.retry_after <= _MAX_RETRY_AFTER_S:
            return float(failure.retry_after)
        return float(self.policy.backoff_base_s * (2**retry) * self._rng.uniform(0.5, 1.5))

    async def run(self, group: str, call: Callable[[Deployment], Awaitable[T]]) -> Routed[T]:
        """Run `call` on deployments of `group` (then its fallbacks) until one succeeds."""
        attempts: list[Attempt] = []
        chain = [group, *self.policy.fallbacks.get(group, [])]
        last: UpstreamFailure | None = None
        index = 0
        while index < len(chain):
            current = chain[index]
            tried: set[str] = set()
            for retry in range(self.policy.num_retries + 1):
                candidates = self._candidates(current, tried)
                if not candidates:
                    break
                deployment = self._pick(candidates, self._stats)
                tried.add(deployment.id)
                try:
                    value = await self._attempt(deployment, call, attempts)
                except UpstreamFailure as failure:
                    last = failure
                    if failure.context_window and (more := self.policy.context_window_fallbacks.get(current)):
                        chain[index + 1 : index + 1] = [g for g in more if g not in chain]
                        break
                    if not failure.retryable:
                        failure.attempts = list(attempts)
                        raise
                    if retry < self.policy.num_retries:
                        await asyncio.sleep(self._backoff(retry, failure))
                    continue
                return Routed(value, deployment, attempts, fallback_used=index > 0)
            index += 1
        assert last is not None
        last.attempts = list(attempts)
        raise last

    def _pin(self, d: Deployment) -> Deployment:
        """`d` with its key read once for one attempt (cached while the key's version stands)."""
        if not isinstance(d.api_key, LiveSecret):
            return d
        current = d.api_key.current
        cached = self._pinned.get(d.id)
        if cached is None or cached[0] is not current:
            cached = self._pinned[d.id] = (current, pinned_key(d))
        return cached[1]

    async def _attempt(self, d: Deployment, call: Callable[[Deployment], Awaitable[T]], attempts: list[Attempt]) -> T:
        used = self._pin(d)
        try:
            return await self._call(d, used, call, attempts)
        except UpstreamFailure as failure:
            secret = d.api_key
            if failure.status not in AUTH_REFUSED or not isinstance(secret, LiveSecret):
                raise
            assert isinstance(used.api_key, SecretValue)
            refused = used.api_key
            fresh = await secret.refresh_now(stale=refused.reveal())
            if fresh.value == refused.reveal():
                raise
            log.info(
                "deployment %s: provider refused key version %s (HTTP %s); retrying with version %s",
                d.id,
                refused.version,
                failure.status,
                fresh.version,
            )
            return await self._call(d, self._pin(d), call, attempts)

    async def _call(
        self, d: Deployment, used: Deployment, call: Callable[[Deployment], Awaitable[T]], attempts: list[Attempt]
    ) -> T:
        key_version = used.api_key.version if isinstance(used.api_key, SecretValue) else None
        stats = self._stats[d.id]
        stats.in_flight += 1
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        timeout = d.timeout or self.policy.timeout_s
        try:
            async with asyncio.timeout(timeout):
                value = await call(used)
        except TimeoutError:
            failure = UpstreamFailure(f"no answer within {timeout} s", status=None, kind="timeout")
            self._record_failure(d)
            attempts.append(Attempt(d, started_ns, time.time_ns(), "retryable_error", None, "timeout", key_version))
            raise failure from None
        except UpstreamFailure as failure:
            if failure.retryable:
                self._record_failure(d)
            outcome = "retryable_error" if failure.retryable else "terminal_error"
            attempts.append(Attempt(d, started_ns, time.time_ns(), outcome, failure.status, failure.kind, key_version))
            raise
        finally:
            stats.in_flight -= 1
        stats.observe_latency(time.perf_counter() - t0)
        attempts.append(Attempt(d, started_ns, time.time_ns(), "ok", 200, key_version=key_version))
        return value
