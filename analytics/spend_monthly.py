"""The `spend_monthly` mart: `spend_daily` rolled up to local calendar months.

Rolled up from the daily mart rather than the ledger, so a month is exactly the sum of its
days as the dashboard shows them, and an incremental run re-reads no ledger to refresh it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from analytics.spend_daily import DIMENSIONS, SPEND_DAILY_SCHEMA, measures
from meterline.layout import DataLayout

MART = "spend_monthly"

SPEND_MONTHLY_SCHEMA = pl.Schema({"month": pl.Date(), **{k: v for k, v in SPEND_DAILY_SCHEMA.items() if k != "date"}})
"""`month` is the first day of the local month; the other columns are `spend_daily`'s."""
SPEND_MONTHLY_COLUMNS: tuple[str, ...] = tuple(SPEND_MONTHLY_SCHEMA.names())
GROUP_KEYS: tuple[str, ...] = ("month", *DIMENSIONS)


def monthly_rows(daily: pl.LazyFrame) -> pl.LazyFrame:
    """Month rows from `spend_daily` rows, sorted by the keys."""
    return (
        daily.with_columns(pl.col("date").dt.month_start().alias("month"))
        .group_by(GROUP_KEYS)
        .agg(measures(from_mart=True))
        .select(SPEND_MONTHLY_COLUMNS)
        .cast(SPEND_MONTHLY_SCHEMA)
        .sort(GROUP_KEYS, nulls_last=True)
    )


def read_spend_monthly(layout: DataLayout, since: dt.date, until: dt.date) -> pl.DataFrame:
    """Mart rows of the months from `since`'s to `until`'s; no mart yet -> no rows."""
    path = layout.mart_file(MART)
    if not path.exists():
        return SPEND_MONTHLY_SCHEMA.to_frame()
    months = pl.col("month").is_between(since.replace(day=1), until.replace(day=1))
    return pl.scan_parquet(path, schema=SPEND_MONTHLY_SCHEMA).filter(months).collect()
