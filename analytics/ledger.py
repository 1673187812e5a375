"""Read side of the usage ledger: one lazy Polars scan over every finished Parquet part."""

from __future__ import annotations

import functools

import polars as pl

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
