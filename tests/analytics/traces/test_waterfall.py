"""analytics/traces/waterfall.py: a trace's spans in order and depth, attempts labelled, usage joined."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from analytics.traces.waterfall import load_trace, resolve_trace_id
from tests.trace_ledger import (
    AGENT_KEY,
    PROVIDER_KEY,
    REQUEST_A,
    REQUEST_B,
    REQUEST_D,
    TRACE_A,
    TRACE_B,
    TRACE_D,
    TraceLedger,
)


def _shape(trace_id: str, con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    trace = load_trace(con, trace_id)
    assert trace is not None
    return [(s.depth, s.name, s.kind, s.service_name, s.role, s.offset_ms, s.duration_ms) for s in trace.spans]


def test_agent_and_gateway_spans_share_one_waterfall(con: duckdb.DuckDBPyConnection, ledger: TraceLedger) -> None:
    assert _shape(TRACE_A, con) == [
        (0, "handle ticket", "INTERNAL", "support-agent", None, 0.0, 3000.0),
        (1, "call llm", "CLIENT", "support-agent", None, 100.0, 2500.0),
        (2, "chat gpt-4o-mini", "SERVER", "meterline-gateway", None, 120.0, 2460.0),
        (3, "chat gpt-4o-mini", "CLIENT", "meterline-gateway", "attempt 1", 130.0, 270.0),
        (3, "chat gpt-4o-mini", "CLIENT", "meterline-gateway", "retry", 460.0, 2110.0),
        (1, "post reply", "INTERNAL", "support-agent", None, 2650.0, 250.0),
    ]
    trace = load_trace(con, TRACE_A)
    assert trace is not None
    assert (trace.ts_start, trace.duration_ms) == (ledger.t0, 3000.0)
    root, call, server, first, retry, _ = trace.spans
    assert root.attributes == {"ticket.id": "T-1042"}
    assert root.resource_attributes["service.name"] == "support-agent"
    assert server.parent_span_id == call.span_id == "a2a2a2a2a2a2a2a2"
    assert (first.status_code, first.attributes["http.response.status_code"], first.attributes["error.type"]) == (
        "ERROR", 500, "upstream_http_500",
    )  # fmt: skip
    assert retry.attributes["meterline.deployment.id"] == "gpt-4o-mini#0"
    # The usage record is joined to the gateway's server span, and to nothing else.
    assert [s.usage["request_id"] if s.usage else None for s in trace.spans] == [
        None,
        None,
        REQUEST_A,
        None,
        None,
        None,
    ]
    assert server.usage is not None
    expected = dataclasses.asdict(ledger.records[REQUEST_A])
    assert {k: server.usage[k] for k in expected if k != "tags"} == {k: v for k, v in expected.items() if k != "tags"}
    assert server.usage["tags"] == {"cost_center": "cc-102"}
    assert trace.usage == [server.usage]


def test_retries_then_a_fallback(con: duckdb.DuckDBPyConnection) -> None:
    assert [(d, n, r) for d, n, _, _, r, _, _ in _shape(TRACE_B, con)] == [
        (0, "chat gpt-4o", None),
        (1, "chat gpt-4o", "attempt 1"),
        (1, "chat gpt-4o", "retry"),
        (1, "chat gpt-4o-mini", "fallback"),
    ]


def test_a_request_whose_spans_were_sampled_out_shows_from_its_usage_record(con: duckdb.DuckDBPyConnection) -> None:
    trace = load_trace(con, TRACE_D)
    assert trace is not None
    [only] = trace.spans
    assert (only.name, only.stored, only.duration_ms, only.usage and only.usage["request_id"]) == (
        "chat gpt-4o-mini", False, 500.0, REQUEST_D,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        (TRACE_A, TRACE_A),
        (TRACE_A.upper(), TRACE_A),
        (f" {REQUEST_B} ", TRACE_B),
        (REQUEST_D, TRACE_D),
        ("0" * 32, None),
        ("req_ffffffffffffffffffffffffffffffff", None),
        ("'; DROP TABLE usage; --", None),
    ],
)
def test_resolve_trace_id(con: duckdb.DuckDBPyConnection, ident: str, expected: str | None) -> None:
    assert resolve_trace_id(con, ident) == expected


def test_unknown_trace(con: duckdb.DuckDBPyConnection) -> None:
    assert load_trace(con, "0" * 32) is None


def test_no_key_is_stored_anywhere_in_a_trace(con: duckdb.DuckDBPyConnection) -> None:
    for trace_id in (TRACE_A, TRACE_B, TRACE_D):
        text = repr(load_trace(con, trace_id))
        assert AGENT_KEY not in text and PROVIDER_KEY not in text and "sk-" not in text
