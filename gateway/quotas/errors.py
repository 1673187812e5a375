"""How a quota refusal reaches the agent: OpenAI's 429 error JSON and rate-limit headers.

The codes follow OpenAI's: `rate_limit_exceeded` (type `requests` or `tokens`) for per-minute
and concurrency limits, `tokens_per_day_exceeded` for the daily token cap, `budget_exceeded`
with type `insufficient_quota` for dollar budgets. Messages name the limit and its scope
(agent or team id), never a key.
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
        self.retry_after = retry_after
        self.headers = {**headers, "retry-after": str(retry_after)}
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
        if requested > limit.cap:
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


def rate_limit_headers(
    limits: Sequence[AppliedLimit], used: Sequence[int], frees_in: Sequence[float]
) -> dict[str, str]:
    """OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: for each, the limit
    with the least remaining among those that apply (agent and team, minute and day)."""
    headers: dict[str, str] = {}
    for dimension, suffix in ((Dimension.REQUESTS, "requests"), (Dimension.TOKENS, "tokens")):
        best: tuple[int, int, float] | None = None
        for limit, value, seconds in zip(limits, used, frees_in, strict=True):
            if limit.spec.dimension is dimension:
                remaining = max(0, limit.cap - value)
                if best is None or remaining < best[1]:
                    best = (limit.cap, remaining, seconds)
        if best is not None:
            headers[f"x-ratelimit-limit-{suffix}"] = str(best[0])
            headers[f"x-ratelimit-remaining-{suffix}"] = str(best[1])
            headers[f"x-ratelimit-reset-{suffix}"] = openai_duration(best[2])
    return headers
