"""One trace as a waterfall: every span in start order and parent-child depth, with its
attributes, and the gateway's usage records joined on trace_id/span_id.

A trace holds an agent's own spans (any OpenTelemetry SDK exporting to the collector), the
gateway's server span for each request (its parent is the agent's span when the agent sent
`traceparent`) and one CLIENT span per upstream attempt under it. Attempts are labelled from
their `meterline.deployment.id` (`<model group>#<n>`): the first is `attempt 1`, a later one on
the group of the one before is a retry, on another group a fallback. A usage record whose span
was not stored (sampled out) still shows, as a row of its own built from the record.

A span whose parent is not in the trace (a remote parent that was never exported) is a root.
Roots, and each span's children, are ordered by start time (then end, then span id).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from meterline import semconv

TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")


@dataclass
class WaterfallSpan:
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str | None
    service_name: str | None
    status_code: str | None
    status_message: str | None
    ts_start: dt.datetime
    ts_end: dt.datetime
    duration_ms: float
    depth: int = 0
    offset_ms: float = 0.0
    """From the trace's start."""
    attributes: dict[str, Any] = field(default_factory=dict)
    resource_attributes: dict[str, Any] = field(default_factory=dict)
    role: str | None = None
    """`attempt 1`, `retry` or `fallback` for the gateway's upstream attempts."""
    usage: dict[str, Any] | None = None
    """The usage record of this span's request (the gateway's server span)."""
    stored: bool = True
    """False: the span was not stored; this row was built from its usage record."""


@dataclass
class Trace:
    trace_id: str
    ts_start: dt.datetime
    ts_end: dt.datetime
    duration_ms: float
    spans: list[WaterfallSpan]
    usage: list[dict[str, Any]]
    """Every usage record of the trace, in start order."""


def resolve_trace_id(con: duckdb.DuckDBPyConnection, ident: str) -> str | None:
    """The trace id that `ident` names: a trace id (32 hex) present in the ledger, or a request
    id (`req_...`, a response's `x-request-id`) found in `usage` (or, for a request whose usage
    record is missing, in a span's `meterline.request.id`). None when nothing matches."""
    ident = ident.strip()
    if TRACE_ID.match(ident):
        trace_id = ident.lower()
        found = con.execute(
            "SELECT 1 FROM spans WHERE trace_id = ? UNION ALL SELECT 1 FROM usage WHERE trace_id = ? LIMIT 1",
            [trace_id, trace_id],
        ).fetchone()
        return trace_id if found else None
    row = con.execute("SELECT trace_id FROM usage WHERE request_id = ? LIMIT 1", [ident]).fetchone()
    if row is None:
        row = con.execute(
            "SELECT trace_id FROM spans WHERE json_extract_string(attributes, ?) = ? LIMIT 1",
            [f'$."{semconv.METERLINE_REQUEST_ID}"', ident],
        ).fetchone()
    return str(row[0]) if row else None


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"": value}


def _span(row: dict[str, Any]) -> WaterfallSpan:
    return WaterfallSpan(
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=row["name"],
        kind=row["kind"],
        service_name=row["service_name"],
        status_code=row["status_code"],
        status_message=row["status_message"],
        ts_start=row["ts_start"],
        ts_end=row["ts_end"],
        duration_ms=float(row["duration_ms"]),
        attributes=_json_object(row["attributes"]),
        resource_attributes=_json_object(row["resource_attributes"]),
    )


def _from_usage(record: dict[str, Any]) -> WaterfallSpan:
    """A request whose server span was not stored, drawn from its usage record."""
    return WaterfallSpan(
        span_id=record["span_id"],
        parent_span_id=None,
        name=f"{record['operation']} {record['model_requested']}",
        kind="SERVER",
        service_name=None,
        status_code="ERROR" if (record["http_status"] or 0) >= 500 else "UNSET",
        status_message=None,
        ts_start=record["ts_start"],
        ts_end=record["ts_end"],
        duration_ms=float(record["latency_ms"]),
        usage=record,
        stored=False,
    )


def _order(spans: list[WaterfallSpan]) -> list[WaterfallSpan]:
    """Depth-first from the roots, siblings by start; sets each span's depth."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str | None, list[WaterfallSpan]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in by_id else None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: (s.ts_start, -s.duration_ms, s.span_id))
    ordered: list[WaterfallSpan] = []
    seen: set[str] = set()
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        span.depth = depth
        ordered.append(span)
        stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, [])))
    # A parent cycle (no root reaches it) cannot come from a real SDK; show such spans anyway.
    ordered.extend(s for s in sorted(spans, key=lambda s: (s.ts_start, s.span_id)) if s.span_id not in seen)
    return ordered


def _group(span: WaterfallSpan) -> str | None:
    deployment = span.attributes.get(semconv.METERLINE_DEPLOYMENT_ID)
    return deployment.rsplit("#", 1)[0] if isinstance(deployment, str) else None


def _label_attempts(spans: list[WaterfallSpan]) -> None:
    """Attempt roles among each parent's CLIENT children that carry a deployment id."""
    previous: dict[str | None, str | None] = {}
    for span in spans:  # already in start order within each parent
        group = _group(span)
        if span.kind != "CLIENT" or group is None:
            continue
        if span.parent_span_id not in previous:
            span.role = "attempt 1"
        else:
            span.role = "retry" if previous[span.parent_span_id] == group else "fallback"
        previous[span.parent_span_id] = group


def load_trace(con: duckdb.DuckDBPyConnection, trace_id: str) -> Trace | None:
    """The trace's waterfall, or None when the ledger holds nothing of it."""
    trace_id = trace_id.lower()
    span_rows = _rows(con.execute("SELECT * FROM spans WHERE trace_id = ? ORDER BY ts_start, span_id", [trace_id]))
    usage = _rows(con.execute("SELECT * FROM usage WHERE trace_id = ? ORDER BY ts_start, request_id", [trace_id]))
    if not span_rows and not usage:
        return None
    spans = [_span(row) for row in span_rows]
    by_id = {s.span_id: s for s in spans}
    for record in usage:
        span = by_id.get(record["span_id"])
        if span is None:
            span = by_id[record["span_id"]] = _from_usage(record)
            spans.append(span)
        elif span.usage is None:
            span.usage = record
    ordered = _order(spans)
    _label_attempts(ordered)
    start = min(s.ts_start for s in ordered)
    end = max(s.ts_end for s in ordered)
    for span in ordered:
        span.offset_ms = (span.ts_start - start) / dt.timedelta(milliseconds=1)
    return Trace(trace_id, start, end, (end - start) / dt.timedelta(milliseconds=1), ordered, usage)
