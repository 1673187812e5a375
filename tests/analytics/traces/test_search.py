"""analytics/traces/search.py over a ledger written by a real collector (tests/trace_ledger.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pytest

from analytics.traces.search import TraceQuery, parse_time, search_traces
from tests.trace_ledger import (
    REQUEST_A,
    REQUEST_B,
    REQUEST_C,
    REQUEST_D,
    TRACE_A,
    TRACE_B,
    TRACE_C,
    TRACE_D,
    TraceLedger,
)

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - dt.timedelta(seconds=90)),
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("1h", NOW - dt.timedelta(hours=1)),
        ("7d", NOW - dt.timedelta(days=7)),
        ("2026-12-01", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)),
        ("2026-12-01T09:30", dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)),
        ("2026-12-01T09:30+08:00", dt.datetime(2026, 12, 1, 1, 30, tzinfo=dt.UTC)),
    ],
)
def test_parse_time(text: str, expected: dt.datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_parse_time_names_the_forms() -> None:
    with pytest.raises(ValueError, match=r"90s, 30m, 1h, 7d"):
        parse_time("yesterday", NOW)


def test_every_trace_newest_first_with_exact_rows(con: duckdb.DuckDBPyConnection, ledger: TraceLedger) -> None:
    rows = search_traces(con, TraceQuery())
    assert [r["trace_id"] for r in rows] == [TRACE_D, TRACE_B, TRACE_A, TRACE_C]
    by_id = {r["trace_id"]: r for r in rows}
    assert by_id[TRACE_A] == {
        "trace_id": TRACE_A,
        "ts_start": ledger.t0,
        "duration_ms": 3000.0,
        "status": "ok",  # the failed first attempt was retried: not the trace's failure
        "agents": ["support-bot"],
        "models": ["gpt-4o-mini"],
        "requests": 1,
        "request_ids": [REQUEST_A],
        "spans": 6,
        "services": ["meterline-gateway", "support-agent"],
        "root": "handle ticket",
        "input_tokens": 1200,
        "output_tokens": 345,
        "cost_usd": 0.000387,
    }
    assert by_id[TRACE_B] | {"ts_start": None} == {
        "trace_id": TRACE_B, "ts_start": None, "duration_ms": 1800.0, "status": "ok", "agents": ["research-agent"],
        "models": ["gpt-4o", "gpt-4o-mini"], "requests": 1, "request_ids": [REQUEST_B], "spans": 4,
        "services": ["meterline-gateway"], "root": "chat gpt-4o", "input_tokens": 800, "output_tokens": 200,
        "cost_usd": 0.00024,
    }  # fmt: skip
    assert (by_id[TRACE_C]["status"], by_id[TRACE_C]["cost_usd"], by_id[TRACE_C]["spans"]) == ("error", 0.0, 2)
    # Spans sampled out: the usage record alone makes the trace.
    assert (by_id[TRACE_D]["spans"], by_id[TRACE_D]["root"], by_id[TRACE_D]["request_ids"]) == (0, None, [REQUEST_D])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TraceQuery(agent="support-bot"), [TRACE_A]),
        (TraceQuery(model="gpt-4o"), [TRACE_B, TRACE_C]),
        (TraceQuery(model="gpt-4o-mini"), [TRACE_D, TRACE_B, TRACE_A]),
        (TraceQuery(status="error"), [TRACE_C]),
        (TraceQuery(status="ok"), [TRACE_D, TRACE_B, TRACE_A]),
        (TraceQuery(min_latency_ms=1800), [TRACE_B, TRACE_A]),
        (TraceQuery(min_cost_usd=0.00024), [TRACE_B, TRACE_A]),
        (TraceQuery(trace_id=TRACE_A.upper()), [TRACE_A]),
        (TraceQuery(request_id=REQUEST_C), [TRACE_C]),
        (TraceQuery(request_id="req_nobody"), []),
        (TraceQuery(limit=2), [TRACE_D, TRACE_B]),
        (TraceQuery(agent="support-bot", status="error"), []),
    ],
)
def test_filters(con: duckdb.DuckDBPyConnection, query: TraceQuery, expected: list[str]) -> None:
    assert [r["trace_id"] for r in search_traces(con, query)] == expected


def test_time_range(con: duckdb.DuckDBPyConnection, ledger: TraceLedger) -> None:
    t0 = ledger.t0
    since = TraceQuery(since=t0 - dt.timedelta(hours=1))
    assert [r["trace_id"] for r in search_traces(con, since)] == [TRACE_D, TRACE_B, TRACE_A]
    window = dataclasses.replace(since, until=t0 + dt.timedelta(seconds=60))
    assert [r["trace_id"] for r in search_traces(con, window)] == [TRACE_A]  # until is exclusive
    older = TraceQuery(until=t0 - dt.timedelta(hours=1))
    assert [r["trace_id"] for r in search_traces(con, older)] == [TRACE_C]
