"""What a usage record may hold: the limits the collector checks every record against at ingest
(`collector/validation.py`) and analytics checks stored rows against (`analytics/row_checks.py`).

Declared once here, read from `collector.validation` in meterline.yaml. A record outside them is
quarantined with its reasons (`meterline/quarantine.py`), never written to the ledger.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
"""An agent, team or project id: what the config accepts and what a usage record may carry
(letters, digits, `._:@-`; no slash, space or control character; at most 128 characters)."""

GATEWAY_REQUEST_ID_PATTERN = r"^req_[0-9a-f]{32}$"
"""A request id as the gateway mints it (`gateway/metering.py`: `req_` + 16 random bytes in hex)."""


HARD_MAX_USD = 1e9
"""No configured `max_cost_usd` goes beyond this; analytics sets aside stored rows above it (a
fixed bound, so marts never depend on the config; far below the fixed-point sums' range)."""
HARD_MAX_TOKENS = 10**12
"""No configured `max_tokens` goes beyond this; analytics sets aside stored rows above it."""


class RecordLimits(BaseModel):
    """`collector.validation`: the bounds of a believable usage record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(default=50_000_000, gt=0, le=HARD_MAX_TOKENS)
    """Largest value of any token column of one record."""
    max_cost_usd: float = Field(default=1_000.0, gt=0, le=HARD_MAX_USD)
    """Largest `cost_usd` (and `cost_saved_usd`) of one record."""
    max_latency_ms: float = Field(default=86_400_000.0, gt=0)
    """Largest `latency_ms` / `ttft_ms` (a day)."""
    max_attempts: int = Field(default=100, gt=0)
    """Most upstream attempts one record may report."""
    max_past_days: float = Field(default=90.0, gt=0)
    """How old `ts_start` may be on arrival: a gateway's spool replayed after an outage of up to
    this long still lands; anything older goes to the quarantine."""
    max_future_seconds: float = Field(default=300.0, ge=0)
    """How far ahead of the collector's clock `ts_start` / `ts_end` may be (clock skew)."""
    max_string_chars: int = Field(default=256, gt=0)
    """Longest dimension string (model, provider, status, tags, ...), in characters."""
    max_usage_raw_chars: int = Field(default=65_536, gt=0)
    """Longest `usage_raw` (the provider's usage block as JSON)."""
    max_tags: int = Field(default=64, ge=0)
    """Most tags one record may carry."""
    request_id_pattern: str = GATEWAY_REQUEST_ID_PATTERN
    """Regular expression (RE2 syntax, anchored) a `request_id` must match."""
    id_pattern: str = ID_PATTERN
    """Regular expression an `agent_id`, `team` and `project` must match (the config's id format)."""
    cost_ceiling_factor: float = Field(default=2.0, ge=1.0)
    """For a model in the price table: `cost_usd` may not exceed (input + output tokens) x the
    model's highest per-token rate x this factor (room for a price table newer than ours)."""

    @field_validator("request_id_pattern", "id_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if not (value.startswith("^") and value.endswith("$")):
            raise ValueError("must be anchored (start with ^ and end with $)")
        return value
