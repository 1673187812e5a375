"""Read side of the usage ledger: one lazy Polars scan over every finished Parquet part."""

from __future__ import annotations

import functools

import polars as pl

from analytics.row_checks import valid
from meterline.layout import USAGE_TABLE, DataLayout
from meterline.usage_record import usage_table


@functools.cache
def usage_schema() -> pl.Schema:
    """The ledger schema in Polars terms, derived from the one `UsageRecord` definition."""
    return pl.DataFrame(usage_table([])).schema


def scan_usage(layout: DataLayout) -> pl.LazyFrame:
    """Every usage row in the ledger, lazily; an empty or absent ledger is an empty frame.

    The `date` column is read from inside the files, not from the `date=YYYY-MM-DD` folder
    name: the file column is the contract (`UsageRecord.date`), so `hive_partitioning=False`
    avoids a second, string-derived `date` colliding with it. Passing the contract schema
    makes an empty glob an empty frame instead of an error, and makes a part written with a
    drifted schema fail loudly here rather than skew the bill.
    """
    return pl.scan_parquet(
        layout.table_glob(USAGE_TABLE),
        hive_partitioning=False,
        schema=usage_schema(),
        # Parts written before a column was added (schema versions are additive) read it as null.
        missing_columns="insert",
    )


def scan_files(paths: list[str], storage_options: dict[str, str] | None = None) -> pl.LazyFrame:
    """The usage rows of the given Parquet parts, lazily (same contract as `scan_usage`); paths
    may be `s3://` URLs, reached with `storage_options`."""
    if not paths:
        return usage_schema().to_frame().lazy()
    return pl.scan_parquet(
        paths,
        hive_partitioning=False,
        schema=usage_schema(),
        missing_columns="insert",
        storage_options=storage_options,
    )


def local_date(timezone: str) -> pl.Expr:
    """The day a request belongs to in the configured time zone: `ts_start` converted, then dated.

    Ledger partitions are UTC dates; the marts' days and months follow `timezone`, so one UTC
    partition can feed two local days.
    """
    return pl.col("ts_start").dt.convert_time_zone(timezone).dt.date()


def billable(frame: pl.LazyFrame, timezone: str) -> pl.LazyFrame:
    """Ledger rows ready to aggregate: one row per request, the answering model, the local `date`.

    Invalid rows (`row_checks.valid`) are left out. A request seen twice (a compaction caught
    between writing the merged part and removing the small ones) is billed once; duplicates of
    one request_id are identical. A record without a model (an error before any provider
    answered) is attributed to the alias the agent asked for.
    """
    return (
        frame.filter(valid())
        .unique(subset="request_id", keep="any")
        .with_columns(
            pl.coalesce("model", "model_requested").alias("model"),
            local_date(timezone).alias("date"),
        )
    )
