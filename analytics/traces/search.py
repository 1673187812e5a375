"""Find traces: one row per trace, newest first, filtered like the Traces page and `meterline traces`.

A trace is whatever shares a trace_id across `spans` (the gateway's and any agent's own) and
`usage` (the gateway's records): a trace whose spans were sampled out still shows through its
usage records, and an agent's trace that never reached the gateway through its spans. A trace
is in a time range when one of its spans or requests starts in it (the range also prunes date
partitions). Its measures:

- `duration_ms`: from its first start to its last end, across spans and requests;
- `status`: `error` when a request failed or a span other than an upstream attempt has status
  ERROR (a failed attempt that a retry or fallback made good is not the trace's failure), else
  another non-ok request status (`client_disconnected`), else `ok`; the `status` filter matches
  a trace holding any request (or span) of that status;
- `agents` and `models`: from the usage records (requested and answering model) and the spans'
  `meterline.agent.id` and GenAI model attributes;
- `cost_usd`, tokens: summed over its usage records (exactly: as decimals).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import duckdb

from meterline import semconv

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
DEPLOYMENT = semconv.METERLINE_DEPLOYMENT_ID
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(value: str, now: dt.datetime) -> dt.datetime:
    """`90s`, `30m`, `1h`, `7d` (that long before `now`), an ISO date (its midnight, UTC) or an
    ISO date and time (UTC unless it names an offset). Raises ValueError naming the forms."""
    text = value.strip()
    match = _RELATIVE.match(text)
    if match is not None:
        return now - dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r}: expected a duration (90s, 30m, 1h, 7d), a date (2026-12-01) or a time (2026-12-01T09:30)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class TraceQuery:
    """What the Traces page's form and `meterline traces` filter on; None: no filter."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    agent: str | None = None
    model: str | None = None
    status: str | None = None
    min_latency_ms: float | None = None
    min_cost_usd: float | None = None
    trace_id: str | None = None
    request_id: str | None = None
    limit: int = 50


COLUMNS = (
    "trace_id", "ts_start", "duration_ms", "status", "agents", "models", "requests", "request_ids",
    "spans", "services", "root", "input_tokens", "output_tokens", "cost_usd",
)  # fmt: skip
"""A result row's keys, in display order."""


def _scoped(table: str, query: TraceQuery, params: list[Any]) -> str:
    """The WHERE clause of one table's rows: time range (and its partitions), trace/request id."""
    clauses = ["true"]
    # The partition bounds are literals (a date's ISO form), so DuckDB prunes folders by them.
    if query.since is not None:
        clauses += ["ts_start >= ?", f"date >= DATE '{query.since.astimezone(dt.UTC).date().isoformat()}'"]
        params.append(query.since)
    if query.until is not None:
        clauses += ["ts_start < ?", f"date <= DATE '{query.until.astimezone(dt.UTC).date().isoformat()}'"]
        params.append(query.until)
    if query.trace_id is not None:
        clauses.append("trace_id = ?")
        params.append(query.trace_id.lower())
    if query.request_id is not None:
        clauses.append("trace_id IN (SELECT trace_id FROM usage WHERE request_id = ?)")
        params.append(query.request_id)
    return f"SELECT * FROM {table} WHERE " + " AND ".join(clauses)


def search_traces(con: duckdb.DuckDBPyConnection, query: TraceQuery) -> list[dict[str, Any]]:
    """The traces matching `query`, newest first, at most `query.limit`; keys as `COLUMNS`."""
    params: list[Any] = []
    spans_in = _scoped("spans", query, params)
    usage_in = _scoped("usage", query, params)
    filters = ["true"]
    if query.agent is not None:
        filters.append("list_contains(agents, ?)")
        params.append(query.agent)
    if query.model is not None:
        filters.append("list_contains(models, ?)")
        params.append(query.model)
    if query.status is not None:
        filters.append("list_contains(statuses, ?)")
        params.append(query.status)
    if query.min_latency_ms is not None:
        filters.append("duration_ms >= ?")
        params.append(query.min_latency_ms)
    if query.min_cost_usd is not None:
        filters.append("coalesce(cost_usd, 0) >= ?")
        params.append(query.min_cost_usd)
    params.append(query.limit)
    sql = f"""
WITH s AS (
  SELECT trace_id,
         min(ts_start) AS s_start, max(ts_end) AS s_end, count(*) AS spans,
         count(*) FILTER (WHERE status_code = 'ERROR' AND json_extract_string(attributes, '$."{DEPLOYMENT}"') IS NULL)
           AS error_spans,
         arg_min(name, ts_start) FILTER (WHERE parent_span_id IS NULL) AS root_name,
         arg_min(name, ts_start) AS first_name,
         list(DISTINCT service_name) FILTER (WHERE service_name IS NOT NULL) AS services,
         list(DISTINCT agent_id) FILTER (WHERE agent_id IS NOT NULL) AS s_agents,
         list(DISTINCT request_model) FILTER (WHERE request_model IS NOT NULL) AS s_requested,
         list(DISTINCT response_model) FILTER (WHERE response_model IS NOT NULL) AS s_answered
  FROM ({spans_in}) GROUP BY trace_id
), u AS (
  SELECT trace_id,
         min(ts_start) AS u_start, max(ts_end) AS u_end, count(*) AS requests,
         list(request_id ORDER BY ts_start, request_id) AS request_ids,
         list(DISTINCT agent_id) FILTER (WHERE agent_id IS NOT NULL) AS u_agents,
         list(DISTINCT model_requested) FILTER (WHERE model_requested IS NOT NULL) AS u_requested,
         list(DISTINCT model) FILTER (WHERE model IS NOT NULL) AS u_answered,
         list(DISTINCT status) FILTER (WHERE status IS NOT NULL) AS u_statuses,
         sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
         sum(cost_usd::DECIMAL(38, 12))::DOUBLE AS cost_usd
  FROM ({usage_in}) GROUP BY trace_id
), t AS (
  SELECT coalesce(s.trace_id, u.trace_id) AS trace_id,
         least(s_start, u_start) AS ts_start,
         date_diff('microsecond', least(s_start, u_start), greatest(s_end, u_end)) / 1000.0 AS duration_ms,
         list_sort(list_distinct(list_concat(coalesce(u_agents, []), coalesce(s_agents, [])))) AS agents,
         list_sort(list_distinct(list_concat(coalesce(u_requested, []), coalesce(u_answered, []),
                                             coalesce(s_requested, []), coalesce(s_answered, [])))) AS models,
         list_concat(coalesce(u_statuses, []),
                     CASE WHEN coalesce(error_spans, 0) > 0 THEN ['error'] ELSE [] END,
                     CASE WHEN coalesce(error_spans, 0) = 0 AND u_statuses IS NULL THEN ['ok'] ELSE [] END
         ) AS statuses,
         coalesce(requests, 0) AS requests, coalesce(request_ids, []) AS request_ids,
         coalesce(spans, 0) AS spans, list_sort(coalesce(services, [])) AS services,
         coalesce(root_name, first_name) AS root,
         input_tokens, output_tokens, cost_usd
  FROM s FULL OUTER JOIN u ON s.trace_id = u.trace_id
)
SELECT trace_id, ts_start, duration_ms,
       CASE WHEN list_contains(statuses, 'error') THEN 'error'
            ELSE coalesce(list_sort(list_filter(statuses, lambda x: x <> 'ok'))[1], 'ok') END AS status,
       agents, models, requests, request_ids, spans, services, root, input_tokens, output_tokens, cost_usd
FROM t WHERE {" AND ".join(filters)}
ORDER BY ts_start DESC, trace_id
LIMIT ?
"""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
