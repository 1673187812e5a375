"""How a quota refusal reaches the agent: OpenAI's 429 error JSON and rate-limit headers.

The codes follow OpenAI's: `rate_limit_exceeded` (type `requests` or `tokens`) for per-minute
and concurrency limits, `tokens_per_day_exceeded` for the daily token cap, `budget_exceeded`
with type `insufficient_quota` for dollar budgets; a request whose worst case alone exceeds a
limit can never be admitted, so it gets `request_exceeds_limit` and no `Retry-After`. Every
refusal carries the `x-ratelimit-*` headers of the limit that refused it. Messages name the
limit and its scope (agent or team id), never a key.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import GatewayError
from gateway.quotas.plan import AppliedLimit
from gateway.quotas.store import NANOS_PER_USD, Dimension
from gateway.quotas.windows import openai_duration


class QuotaExceeded(GatewayError):
    status_code = 429
    error_type = "requests"
    code = "rate_limit_exceeded"

    def __init__(
        self, limit: AppliedLimit, used: int, requested: int, retry_after: int, headers: dict[str, str]
    ) -> None:
        self.limit = limit
        never_fits = requested > limit.cap
        self.retry_after: int | None = None if never_fits else retry_after
        """Seconds until the refusing limit's window frees; None when waiting cannot help."""
        self.headers = headers if never_fits else {**headers, "retry-after": str(retry_after)}
        name = limit.spec.name
        dimension = limit.spec.dimension
        if dimension is Dimension.USD:
            self.error_type, code, title = "insufficient_quota", "budget_exceeded", "Budget exceeded"
        elif name == "tokens_per_day":
            self.error_type, code, title = "tokens", "tokens_per_day_exceeded", "Daily token limit reached"
        else:
            self.error_type = "tokens" if dimension is Dimension.TOKENS else "requests"
            code, title = "rate_limit_exceeded", "Rate limit reached"
        message = (
            f"{title} for {limit.scope} {limit.scope_id} on {limit.spec.description} ({name}): "
            f"Limit {_amount(dimension, limit.cap)}, Used {_amount(dimension, used)}, "
            f"Requested {_amount(dimension, requested)}. "
        )
        if never_fits:
            code = "request_exceeds_limit"
            message += "The request alone is larger than the limit; lower max_tokens or the input."
        else:
            message += f"Please try again in {openai_duration(retry_after)}."
        super().__init__(message, code=code)


class QuotaStoreDown(GatewayError):
    """Redis holds the quota counters, is unreachable, and `quota_store.fail_mode` is closed."""

    status_code = 503
    error_type = "api_error"
    code = "quota_store_unavailable"


def _amount(dimension: Dimension, value: int) -> str:
    return f"${value / NANOS_PER_USD:.6f}".rstrip("0").rstrip(".") if dimension is Dimension.USD else str(value)


def _usd(nanos: int) -> str:
    """Dollars, exactly: `0.0006`, `12.5`, `0`."""
    return f"{nanos // NANOS_PER_USD}.{nanos % NANOS_PER_USD:09d}".rstrip("0").rstrip(".")


def _header_suffix(limit: AppliedLimit) -> str:
    """OpenAI's `requests` and `tokens`; `usd-day`, `usd-month` and `parallel` for the limits
    OpenAI has no header for."""
    spec = limit.spec
    if spec.dimension is Dimension.USD:
        return f"usd-{spec.window.value if spec.window is not None else 'total'}"
    return {Dimension.REQUESTS: "requests", Dimension.TOKENS: "tokens"}.get(spec.dimension, "parallel")


def rate_limit_headers(
    limits: Sequence[AppliedLimit], used: Sequence[int], frees_in: Sequence[float], refused: int | None = None
) -> dict[str, str]:
    """`x-ratelimit-{limit,remaining,reset}-<suffix>` (OpenAI's names for `requests` and
    `tokens`; `usd-day`, `usd-month`; `parallel` without a reset): for each suffix, the limit
    with the least remaining among those that apply (agent and team, minute and day), except
    that the limit at index `refused` speaks for its suffix."""
    best: dict[str, tuple[int, int, int, float]] = {}
    for index, (limit, value, seconds) in enumerate(zip(limits, used, frees_in, strict=True)):
        suffix = _header_suffix(limit)
        remaining = max(0, limit.cap - value)
        held = best.get(suffix)
        if held is None or (held[0] != refused and (index == refused or remaining < held[2])):
            best[suffix] = (index, limit.cap, remaining, seconds)
    headers: dict[str, str] = {}
    for suffix, (index, cap, remaining, seconds) in best.items():
        usd = limits[index].spec.dimension is Dimension.USD
        headers[f"x-ratelimit-limit-{suffix}"] = _usd(cap) if usd else str(cap)
        headers[f"x-ratelimit-remaining-{suffix}"] = _usd(remaining) if usd else str(remaining)
        if limits[index].spec.window is not None:
            headers[f"x-ratelimit-reset-{suffix}"] = openai_duration(seconds)
    return headers
