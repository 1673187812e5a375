"""The usage record: one per client request, the billing ledger row.

This dataclass is the single definition. The Arrow schema (Parquet columns), the OTLP log
encoding (gateway -> collector) and the analytics input are all derived from its fields, so a
column added here reaches every stage and a column missing anywhere fails the contract test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

from meterline.arrow_rows import arrow_schema, rows_to_table

SCHEMA_VERSION = 3
"""Bump when a column is added, removed or changes meaning; stored in Parquet metadata."""

USAGE_EVENT_NAME = "meterline.usage"
"""OTLP log record event name that marks a usage record."""


@dataclass(slots=True)
class UsageRecord:
    """One client request as billed. Token columns follow the OpenTelemetry GenAI meaning:
    input includes cached reads and cache writes; output includes reasoning."""

    request_id: str
    trace_id: str
    span_id: str
    ts_start: dt.datetime
    ts_end: dt.datetime
    latency_ms: float
    agent_id: str
    team: str
    operation: str
    model_requested: str
    date: dt.date
    ttft_ms: float | None = None
    project: str | None = None
    key_alias: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    provider: str | None = None
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_output_tokens: int = 0
    usage_estimated: bool = False
    usage_raw: str | None = None
    cost_usd: float = 0.0
    price_version: str | None = None
    provider_key_version: str | None = None
    status: str = "ok"
    http_status: int = 200
    error_type: str | None = None
    attempts: int = 1
    fallback_used: bool = False
    cache_hit: bool = False
    cost_saved_usd: float = 0.0
    """For a response-cache hit: what the request would have cost (cost_usd is 0)."""
    gateway_instance: str | None = None
    env: str | None = None
    tenant: str | None = None
    text_repaired: bool = False
    """Some string of the record could not be encoded as UTF-8 (a lone surrogate from the
    request, say); each such character was replaced by U+FFFD and the record billed (schema v3)."""

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in USAGE_COLUMNS}


USAGE_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UsageRecord))


@functools.cache
def usage_arrow_schema() -> pa.Schema:
    """The Parquet schema of the ledger, derived from `UsageRecord`."""
    return arrow_schema(UsageRecord, {b"meterline.usage.schema_version": str(SCHEMA_VERSION).encode()})


def usage_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Usage rows (from `UsageRecord.as_row` or the OTLP decoder) -> an Arrow table of the ledger schema."""
    return rows_to_table(rows, usage_arrow_schema())
