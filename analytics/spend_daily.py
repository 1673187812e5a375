"""The `spend_daily` mart: requests, errors, tokens and cost per local day, agent, team,
project, model and provider.

Finance's numbers, the dashboard and `meterline spend` all read this one file, so the
grouping and the money arithmetic are defined once, here. Days follow the configured time zone.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from analytics.ledger import billable, scan_usage
from analytics.usd import sum_exact, sum_usd
from meterline.layout import DataLayout

MART = "spend_daily"

DIMENSIONS: tuple[str, ...] = ("agent_id", "team", "project", "model", "provider")
"""What spend is attributed to; `spend_monthly` rolls the same dimensions up."""

SPEND_DAILY_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "agent_id": pl.String(),
        "team": pl.String(),
        "project": pl.String(),
        "model": pl.String(),
        "provider": pl.String(),
        "requests": pl.Int64(),
        "errors": pl.Int64(),
        "input_tokens": pl.Int64(),
        "output_tokens": pl.Int64(),
        "cache_read_input_tokens": pl.Int64(),
        "reasoning_output_tokens": pl.Int64(),
        "cost_usd": pl.Float64(),
        "cost_saved_usd": pl.Float64(),
    }
)
SPEND_DAILY_COLUMNS: tuple[str, ...] = tuple(SPEND_DAILY_SCHEMA.names())
"""The mart's columns, in file order; the types are in `SPEND_DAILY_SCHEMA`."""

GROUP_KEYS: tuple[str, ...] = ("date", *DIMENSIONS)
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "reasoning_output_tokens")


def measures(*, from_mart: bool) -> list[pl.Expr]:
    """The mart's measures, aggregated from ledger rows or rolled up from mart rows."""
    counts = (
        [pl.col("requests").sum(), pl.col("errors").sum()]
        if from_mart
        else [
            pl.len().cast(pl.Int64).alias("requests"),
            (pl.col("status") != "ok").sum().cast(pl.Int64).alias("errors"),
        ]
    )
    return [*counts, *(pl.col(c).sum() for c in TOKEN_COLUMNS), sum_usd("cost_usd"), sum_usd("cost_saved_usd")]


def daily_rows(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Mart rows from `billable` ledger rows (which carry the local `date`), sorted by the keys."""
    return (
        rows.group_by(GROUP_KEYS)
        .agg(measures(from_mart=False))
        .select(SPEND_DAILY_COLUMNS)
        .cast(SPEND_DAILY_SCHEMA)
        .sort(GROUP_KEYS, nulls_last=True)
    )


def partial_rows(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Sums of some of the `billable` rows of each group, money still fixed-point: partials of
    one day from several partitions add up (`combine`) to exactly the `daily_rows` answer."""
    counts = [
        pl.len().cast(pl.Int64).alias("requests"),
        (pl.col("status") != "ok").sum().cast(pl.Int64).alias("errors"),
    ]
    money = [sum_exact("cost_usd").alias("cost_usd"), sum_exact("cost_saved_usd").alias("cost_saved_usd")]
    return rows.group_by(GROUP_KEYS).agg(*counts, *(pl.col(c).sum() for c in TOKEN_COLUMNS), *money)


def combine(partials: pl.LazyFrame) -> pl.LazyFrame:
    """Mart rows from `partial_rows` results, sorted by the keys."""
    sums = [pl.col(c).sum() for c in ("requests", "errors", *TOKEN_COLUMNS)]
    money = [pl.col(c).sum().cast(pl.Float64) for c in ("cost_usd", "cost_saved_usd")]
    return (
        partials.group_by(GROUP_KEYS)
        .agg(*sums, *money)
        .select(SPEND_DAILY_COLUMNS)
        .cast(SPEND_DAILY_SCHEMA)
        .sort(GROUP_KEYS, nulls_last=True)
    )


def build_spend_daily(layout: DataLayout, timezone: str = "UTC") -> pl.DataFrame:
    """The mart computed in one pass over the whole ledger (the incremental run's reference)."""
    return daily_rows(billable(scan_usage(layout), timezone)).collect()


def read_spend_daily(layout: DataLayout, since: dt.date | None = None, until: dt.date | None = None) -> pl.DataFrame:
    """Mart rows with `since <= date <= until` (either bound optional); no mart yet -> no rows."""
    path = layout.mart_file(MART)
    if not path.exists():
        return SPEND_DAILY_SCHEMA.to_frame()
    frame = pl.scan_parquet(path, schema=SPEND_DAILY_SCHEMA)
    if since is not None:
        frame = frame.filter(pl.col("date") >= since)
    if until is not None:
        frame = frame.filter(pl.col("date") <= until)
    return frame.collect()
