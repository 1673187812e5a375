"""A span as stored in the `spans` table: any OTLP span, from the gateway or an agent's own SDK.

Attributes keep their OTLP names inside a JSON object; the GenAI and Meterline attributes that
queries filter on most are also promoted to columns.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

from meterline.arrow_rows import arrow_schema, rows_to_table

SPAN_SCHEMA_VERSION = 1


@dataclass(slots=True)
class SpanRow:
    trace_id: str
    span_id: str
    name: str
    ts_start: dt.datetime
    ts_end: dt.datetime
    duration_ms: float
    date: dt.date
    parent_span_id: str | None = None
    kind: str | None = None
    service_name: str | None = None
    scope_name: str | None = None
    status_code: str | None = None
    status_message: str | None = None
    operation: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    agent_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    attributes: str | None = None
    resource_attributes: str | None = None


@functools.cache
def span_arrow_schema() -> pa.Schema:
    return arrow_schema(SpanRow, {b"meterline.spans.schema_version": str(SPAN_SCHEMA_VERSION).encode()})


def span_table(rows: list[dict[str, Any]]) -> pa.Table:
    return rows_to_table(rows, span_arrow_schema())
