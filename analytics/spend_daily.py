"""The `spend_daily` mart: spend and tokens per day, agent, team and model.

Finance's numbers, the dashboard and `meterline spend` all read this one file, so the
grouping and the money arithmetic are defined once, here.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from analytics.ledger import scan_usage
from analytics.usd import sum_usd
from meterline.layout import DataLayout, atomic_target, publish

MART = "spend_daily"

SPEND_DAILY_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "agent_id": pl.String(),
        "team": pl.String(),
        "model": pl.String(),
        "requests": pl.Int64(),
        "input_tokens": pl.Int64(),
        "output_tokens": pl.Int64(),
        "cost_usd": pl.Float64(),
    }
)
SPEND_DAILY_COLUMNS: tuple[str, ...] = tuple(SPEND_DAILY_SCHEMA.names())
"""The mart's columns, in file order; the types are in `SPEND_DAILY_SCHEMA`."""

GROUP_KEYS = ("date", "agent_id", "team", "model")


def build_spend_daily(layout: DataLayout) -> pl.DataFrame:
    """The mart computed from the whole ledger, sorted by its group keys."""
    return (
        scan_usage(layout)
        # A request seen twice (e.g. a compaction caught between writing the merged part and
        # removing the small ones) is billed once; duplicates of one request_id are identical.
        .unique(subset="request_id", keep="any")
        # The model that answered is what costs money; a record without it (an error before
        # any provider answered) is attributed to the alias the agent asked for.
        .with_columns(pl.coalesce("model", "model_requested").alias("model"))
        .group_by(GROUP_KEYS)
        .agg(
            pl.len().cast(pl.Int64).alias("requests"),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
            sum_usd("cost_usd"),
        )
        .sort(GROUP_KEYS)
        .select(SPEND_DAILY_COLUMNS)
        .cast(SPEND_DAILY_SCHEMA)
        .collect()
    )


def write_spend_daily(layout: DataLayout) -> int:
    """Rebuild the mart file atomically; returns the number of rows written."""
    frame = build_spend_daily(layout)
    final = layout.mart_file(MART)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = atomic_target(final)
    try:
        frame.write_parquet(temp, compression="zstd")
        publish(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    return frame.height


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
