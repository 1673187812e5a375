"""`meterline traces`, `meterline trace ID` and `meterline sql "..."`: the engineers' view of the
ledger (analytics/traces/), so nobody needs a separate DuckDB CLI.

Exit codes: 0 done; 1 nothing found for `trace ID`, or a query DuckDB could not run; 2 a bad
argument or a statement that would write (`sql` reads only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from meterline.cli.commands import UsageError, data_dir_of, load

if TYPE_CHECKING:
    import duckdb

TABLE_COLUMNS = (
    "ts_start", "trace_id", "duration_ms", "status", "agents", "models", "requests", "spans", "cost_usd", "root",
)  # fmt: skip


def _open(args: argparse.Namespace) -> duckdb.DuckDBPyConnection:
    """The ledger's views for `--data-dir` / `storage.data_dir` (a path or s3://bucket/prefix)."""
    from analytics.traces.ledger import LedgerMissing, connect
    from meterline.storage import open_target
    from meterline.storage.local import LocalTarget

    config, layout = load(args)
    data_dir = data_dir_of(args, config)
    try:
        if data_dir.startswith("s3://"):
            storage = config.storage
            return connect(open_target(layout, data_dir, storage.s3_endpoint_url, storage.s3_region))
        return connect(LocalTarget(layout))
    except LedgerMissing as exc:
        raise UsageError(f"--data-dir / storage.data_dir: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read the ledger at {data_dir}: {exc}") from None


def _emit(text: str) -> None:
    """Print the result; a reader that stops early (`| head`) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _query_failed(exc: Exception) -> int:
    print(f"meterline: query failed: {exc}", file=sys.stderr)
    return 1


def _number(flag: str, value: float | None) -> float | None:
    if value is not None and value < 0:
        raise UsageError(f"{flag}: expected a number >= 0")
    return value


def traces(args: argparse.Namespace) -> int:
    import duckdb

    from analytics.traces.render import render_rows
    from analytics.traces.search import COLUMNS, TraceQuery, parse_time, search_traces

    now = dt.datetime.now(dt.UTC)
    try:
        since = parse_time(args.since, now) if args.since != "all" else None
        until = parse_time(args.until, now) if args.until else None
    except ValueError as exc:
        raise UsageError(f"--since/--until: {exc}") from None
    if args.limit < 1:
        raise UsageError("--limit: expected a positive number")
    query = TraceQuery(
        since=since,
        until=until,
        agent=args.agent,
        model=args.model,
        status=args.status,
        min_latency_ms=_number("--min-latency-ms", args.min_latency_ms),
        min_cost_usd=_number("--min-cost", args.min_cost),
        trace_id=args.trace_id,
        request_id=args.request_id,
        limit=args.limit,
    )
    with _open(args) as con:
        try:
            found = search_traces(con, query)
        except duckdb.Error as exc:
            return _query_failed(exc)
    columns = TABLE_COLUMNS if args.format == "table" else COLUMNS
    _emit(render_rows(columns, [[row[c] for c in columns] for row in found], args.format))
    return 0


def trace(args: argparse.Namespace) -> int:
    import json

    import duckdb

    from analytics.traces.render import render_waterfall, trace_document
    from analytics.traces.waterfall import load_trace, resolve_trace_id

    with _open(args) as con:
        try:
            trace_id = resolve_trace_id(con, args.id)
            found = load_trace(con, trace_id) if trace_id else None
        except duckdb.Error as exc:
            return _query_failed(exc)
    if found is None:
        print(f"meterline: no trace or request with id {args.id!r} in the ledger", file=sys.stderr)
        return 1
    if args.format == "json":
        _emit(json.dumps(trace_document(found), indent=1, ensure_ascii=False))
    else:
        _emit(render_waterfall(found, attributes=args.attributes))
    return 0


def sql(args: argparse.Namespace) -> int:
    import duckdb

    from analytics.traces.read_only import WriteRefused, run
    from analytics.traces.render import render_rows

    with _open(args) as con:
        try:
            columns, rows = run(con, args.query)
        except WriteRefused as exc:
            raise UsageError(f"sql: {exc}") from None
        except duckdb.Error as exc:
            return _query_failed(exc)
    _emit(render_rows(columns, rows, args.format))
    return 0


Shared = Callable[..., None]


def add_parsers(verbs: argparse._SubParsersAction[argparse.ArgumentParser], shared: Shared) -> None:
    found = verbs.add_parser(
        "traces",
        help="find traces by agent, model, status, time, latency, cost, trace or request id",
        description="Traces newest first: one row per trace id across the gateway's and agents' spans and the "
        "usage records. A trace is in the range when one of its spans or requests starts in it.",
    )
    shared(found, top=False)
    found.add_argument(
        "--since", default="24h", help="90s, 30m, 1h, 7d, a date or an ISO time (UTC); 'all' (default: 24h)"
    )
    found.add_argument("--until", default=None, help="end of the range (exclusive), same forms (default: now)")
    found.add_argument("--agent", default=None, help="agent id")
    found.add_argument("--model", default=None, help="model requested or answering")
    found.add_argument("--status", default=None, help="ok, error or client_disconnected (any request of the trace)")
    found.add_argument("--min-latency-ms", type=float, default=None, metavar="MS", help="trace duration at least MS")
    found.add_argument("--min-cost", type=float, default=None, metavar="USD", help="trace cost at least USD")
    found.add_argument("--trace-id", default=None, help="this trace id only")
    found.add_argument("--request-id", default=None, help="the trace of this request id (x-request-id)")
    found.add_argument("--limit", type=int, default=50, help="at most this many traces (default: 50)")
    found.add_argument("--format", choices=["table", "json", "csv"], default="table")
    found.set_defaults(run=traces)

    one = verbs.add_parser(
        "trace",
        help="one trace as a waterfall: agent spans, the gateway's, each upstream attempt, the usage record",
        description="ID is a trace id (32 hex) or a request id (req_..., the x-request-id header of a response).",
    )
    shared(one, top=False)
    one.add_argument("id", metavar="ID", help="trace id or request id")
    one.add_argument("--attributes", action="store_true", help="print every span's attributes under it")
    one.add_argument("--format", choices=["text", "json"], default="text")
    one.set_defaults(run=trace)

    query = verbs.add_parser(
        "sql",
        help="run one read-only SQL query over the views usage, spans and quarantine",
        description="One SELECT (or WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) over the DuckDB views `usage`, "
        "`spans` and `quarantine`; anything that would write is refused (exit 2).",
    )
    shared(query, top=False)
    query.add_argument("query", metavar="SQL", help='e.g. "SELECT agent_id, sum(cost_usd) FROM usage GROUP BY 1"')
    query.add_argument("--format", choices=["table", "json", "csv"], default="table")
    query.set_defaults(run=sql)
