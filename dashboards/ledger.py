"""The ledger's rows for the Spend explorer and the Requests page, as plain Polars functions.

The marts hold days, agents, teams, projects and models; tags, hours, refusals and single
requests are only in the ledger, so these pages read it directly: a lazy scan of the usage
Parquet pruned to the UTC dates that can hold the chosen local days, with the marts' own rules
(invalid rows left out, a request counted once) and money summed exactly (`analytics/usd.py`).

A request has one outcome: `ok`, `refused` (the gateway or the provider turned it away with a
4xx: a quota, a model not allowed, a malformed body) or `failed` (a 5xx, a timeout, a client
that went away). A request no model answered has no model: by model and by provider it is
counted under `(refused)` or `(failed)`, never under the alias it asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from analytics.ledger import local_date, scan_files
from analytics.row_checks import valid
from analytics.usd import sum_usd
from dashboards.filters import Filters
from meterline.layout import USAGE_TABLE, DataLayout

DIMENSIONS: dict[str, str] = {
    "agent": "agent_id",
    "team": "team",
    "project": "project",
    "model": "model",
    "provider": "provider",
}
"""What the explorer groups by (plus `tag:<key>`), URL name -> ledger column."""
BREAKDOWN_COLUMNS: tuple[str, ...] = (
    "cost_usd",
    "requests",
    "cost_per_request_usd",
    "error_rate",
    "refusal_rate",
    "refused",
    "failed",
    "cost_saved_usd",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
)
"""A breakdown's columns after its key, money first (so it is never the one cut off)."""
GRAINS = ("day", "hour")
HOURLY_MAX_DAYS = 7
"""Hourly series only for ranges this short (recent days)."""
PAGE_SIZE = 50
NONE_LABEL = "(none)"

REQUEST_COLUMNS: tuple[str, ...] = (
    "time",
    "agent_id",
    "model",
    "outcome",
    "cost_usd",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "http_status",
    "error_type",
    "model_requested",
    "provider",
    "team",
    "request_id",
    "trace_id",
)
"""The Requests table's columns, most read first (money before the long ids)."""


def outcome() -> pl.Expr:
    """`ok`, `refused` (4xx but a client that went away, 499) or `failed`."""
    return (
        pl.when(pl.col("status") == "ok")
        .then(pl.lit("ok"))
        .when(pl.col("http_status").is_between(400, 498))
        .then(pl.lit("refused"))
        .otherwise(pl.lit("failed"))
    )


def _tag_value(key: str) -> pl.Expr:
    return pl.col("tags").map.get(key)


def _partitions(layout: DataLayout, first: dt.date, last: dt.date) -> pl.LazyFrame:
    """The ledger's rows of the UTC partitions `first..last` (a local day touches at most the
    UTC dates either side of it). A request is in the ledger once, except for a moment while
    compaction swaps a partition's small files for the merged one: only a partition of several
    files is deduplicated, so a compacted day costs no hash of every request id."""
    parts: list[pl.LazyFrame] = []
    for offset in range((last - first).days + 1):
        files = sorted(
            str(path) for path in layout.partition_dir(USAGE_TABLE, first + dt.timedelta(days=offset)).glob("*.parquet")
        )
        if not files:
            continue
        scan = scan_files(files)
        parts.append(scan.unique(subset="request_id", keep="any") if len(files) > 1 else scan)
    return pl.concat(parts, how="vertical") if parts else scan_files([])


def rows(layout: DataLayout, timezone: str, filters: Filters) -> pl.LazyFrame:
    """The ledger's requests whose local day lies in the filters' range and which match them,
    with `local_date`, `local_time` (naive, in `timezone`) and `outcome` added."""
    frame = (
        _partitions(layout, filters.since - dt.timedelta(days=1), filters.until + dt.timedelta(days=1))
        .filter(valid())
        .with_columns(
            local_date(timezone).alias("local_date"),
            pl.col("ts_start").dt.convert_time_zone(timezone).dt.replace_time_zone(None).alias("local_time"),
            outcome().alias("outcome"),
        )
        .filter(pl.col("local_date").is_between(filters.since, filters.until))
    )
    if filters.team:
        frame = frame.filter(pl.col("team") == filters.team)
    if filters.agent:
        frame = frame.filter(pl.col("agent_id") == filters.agent)
    if filters.model:
        frame = frame.filter(pl.col("model") == filters.model)
    if filters.tag:
        frame = frame.filter(_tag_value(filters.tag[0]) == filters.tag[1])
    return frame


def dimension(by: str) -> pl.Expr:
    """The explorer's group key for `by` (a DIMENSIONS name or `tag:<key>`), as text."""
    if by.startswith("tag:"):
        return _tag_value(by.removeprefix("tag:")).fill_null(NONE_LABEL).alias(by)
    column = DIMENSIONS[by]
    if column in ("model", "provider"):
        unanswered = pl.format("({})", pl.col("outcome"))
        return pl.when(pl.col("model").is_null()).then(unanswered).otherwise(pl.col(column)).alias(by)
    return pl.col(column).fill_null(NONE_LABEL).alias(by)


def _measures() -> list[pl.Expr]:
    return [
        pl.len().cast(pl.Int64).alias("requests"),
        (pl.col("outcome") == "refused").sum().cast(pl.Int64).alias("refused"),
        (pl.col("outcome") == "failed").sum().cast(pl.Int64).alias("failed"),
        pl.col("input_tokens").sum(),
        pl.col("output_tokens").sum(),
        pl.col("cache_read_input_tokens").sum().alias("cached_tokens"),
        pl.col("reasoning_output_tokens").sum().alias("reasoning_tokens"),
        sum_usd("cost_usd"),
        sum_usd("cost_saved_usd"),
    ]


def _rates(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(
        (pl.col("failed") / pl.col("requests")).alias("error_rate"),
        (pl.col("refused") / pl.col("requests")).alias("refusal_rate"),
        (pl.col("cost_usd") / pl.col("requests")).alias("cost_per_request_usd"),
    )


def breakdown(frame: pl.LazyFrame, by: str) -> pl.DataFrame:
    """One row per value of `by`: requests, refused, failed, tokens (input, output, cached,
    reasoning), cost, cache savings, error and refusal rates, cost per request; dearest first."""
    grouped = frame.group_by(dimension(by)).agg(_measures())
    return _rates(grouped).select(by, *BREAKDOWN_COLUMNS).sort(["cost_usd", by], descending=[True, False]).collect()


def series(frame: pl.LazyFrame, grain: str) -> pl.DataFrame:
    """Spend and requests per local day (`grain` day) or local hour (hour), in time order."""
    bucket = pl.col("local_date") if grain == "day" else pl.col("local_time").dt.truncate("1h")
    grouped = frame.group_by(bucket.alias("time")).agg(
        pl.len().cast(pl.Int64).alias("requests"), sum_usd("cost_usd"), sum_usd("cost_saved_usd")
    )
    return grouped.sort("time").collect()


def totals(frame: pl.LazyFrame) -> dict[str, float | int]:
    """The whole selection's measures and rates (one dict; zeros for no rows)."""
    row = _rates(frame.select(_measures())).collect().row(0, named=True)
    return {key: (value if value is not None else 0) for key, value in row.items()}


def problems(frame: pl.LazyFrame) -> pl.DataFrame:
    """Refused and failed requests by outcome, HTTP status, error type and the model asked for."""
    keys = ["outcome", "http_status", "error_type", "model_requested"]
    return (
        frame.filter(pl.col("outcome") != "ok")
        .group_by(keys)
        .agg(pl.len().cast(pl.Int64).alias("requests"))
        .sort(["requests", *keys], descending=[True, False, False, False, False], nulls_last=True)
        .collect()
    )


@dataclass(frozen=True)
class RequestQuery:
    """The Requests page's own filters, on top of the sidebar's."""

    outcome: str | None = None
    min_cost_usd: float | None = None
    min_latency_ms: float | None = None
    request_id: str | None = None
    page: int = 1


def requests(
    frame: pl.LazyFrame, query: RequestQuery, last: dt.date | None = None, page_size: int = PAGE_SIZE
) -> tuple[pl.DataFrame, bool]:
    """One page of the matching requests, newest first (ties by request id), and whether an
    older page follows. Nothing counts the whole range (the Requests page takes the count from
    the mart when the mart can answer it). `last`: the newest UTC partition the range may hold."""
    if query.outcome:
        frame = frame.filter(pl.col("outcome") == query.outcome)
    if query.min_cost_usd is not None:
        frame = frame.filter(pl.col("cost_usd") >= query.min_cost_usd)
    if query.min_latency_ms is not None:
        frame = frame.filter(pl.col("latency_ms") >= query.min_latency_ms)
    if query.request_id:
        frame = frame.filter(pl.col("request_id") == query.request_id)
    offset = (max(query.page, 1) - 1) * page_size
    wanted = offset + page_size + 1  # one more: is there an older page?
    newest = last
    window = frame
    # Newest first needs only the newest partitions: a request in an earlier UTC partition
    # started before every request of a later one, so once the last `days` partitions hold
    # the rows up to this page's end, the rest of the range is never read.
    for days in (0, 2, 6, 30):
        if newest is None:
            break
        recent = frame.filter(pl.col("date") >= newest - dt.timedelta(days=days))
        if int(recent.select(pl.len()).collect().item()) >= wanted:
            window = recent
            break
    rows = (
        window.sort(["ts_start", "request_id"], descending=[True, True])
        .slice(offset, page_size + 1)
        .with_columns(pl.col("local_time").alias("time"))
        .select(REQUEST_COLUMNS)
        .collect()
    )
    return rows.head(page_size), rows.height > page_size


def daily(frame: pl.LazyFrame) -> pl.DataFrame:
    """The rows in `spend_daily`'s shape (a request no model answered under the alias it asked
    for, without a provider, as the mart keeps it): the Overview's input when a tag filter needs
    the ledger."""
    keys = ["date", "agent_id", "team", "project", "model", "provider"]
    return (
        frame.with_columns(pl.col("local_date").alias("date"), pl.coalesce("model", "model_requested").alias("model"))
        .group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("requests"),
            (pl.col("outcome") != "ok").sum().cast(pl.Int64).alias("errors"),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
            pl.col("cache_read_input_tokens").sum(),
            pl.col("reasoning_output_tokens").sum(),
            sum_usd("cost_usd"),
            sum_usd("cost_saved_usd"),
        )
        .sort(keys, nulls_last=True)
        .collect()
    )
