"""Ledger partitions as the marts read them: surveyed once per file set, then scanned as
billable rows (one row per request, the answering model, the local `date`).

Copies of one request share its partition (they are the same record, and the partition is
the record's own `date`), so duplicates are a per-partition matter, and within a partition a
matter between files: one part file never holds a request twice (the collector writes each
batch after dropping ids already in the ledger or earlier in the batch, and compaction writes
each request once). So a single-file partition is read as is, a partition of several files is
checked once per file set, and only one that does hold a copy (a merged part beside the small
parts it replaced, which the collector's atomic compaction swap is meant to rule out) pays for
de-duplication.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Collection

import polars as pl

from analytics.ledger import usage_schema
from analytics.ledger_source import LedgerSource
from analytics.local_day import fixed_offset_us, local_date_expr, local_days
from analytics.mart_state import Files, PartitionState


def survey(ledger: LedgerSource, name: str, files: Files, timezone: str) -> PartitionState:
    """The partition's time range, its local days and whether any request_id repeats."""
    facts = [
        pl.col("ts_start").min().dt.epoch("us").alias("lo"),
        pl.col("ts_start").max().dt.epoch("us").alias("hi"),
        pl.len().alias("rows"),
    ]
    if len(files) > 1:
        # 64-bit hashes: as many distinct hashes as rows proves every id distinct; fewer (a copy,
        # or a collision) sends the partition down the exact de-duplicating path.
        facts.append(pl.col("request_id").hash().n_unique().alias("ids"))
    found = ledger.scan(name, files).select(facts).collect().row(0, named=True)
    lo, hi = found["lo"], found["hi"]
    days = [] if lo is None else [d.isoformat() for d in local_days(timezone, lo, hi)]
    return PartitionState(files, days, lo, hi, unique=found.get("ids", found["rows"]) == found["rows"])


def partition_rows(
    ledger: LedgerSource, name: str, part: PartitionState, days: Collection[dt.date], timezone: str
) -> pl.LazyFrame:
    """One partition's billable rows whose local date is one of `days`, lazily."""
    if part.lo_us is None or part.hi_us is None:
        return _dated(usage_schema().to_frame().lazy(), timezone, None, sorted(days))
    rows = _dated(
        ledger.scan(name, part.files),
        timezone,
        fixed_offset_us(timezone, part.lo_us, part.hi_us),
        sorted(days),
    )
    return rows if part.unique else rows.unique(subset="request_id", keep="any")


def _dated(rows: pl.LazyFrame, timezone: str, offset_us: int | None, days: list[dt.date]) -> pl.LazyFrame:
    """A record without a model (an error before any provider answered) is attributed to the
    alias the agent asked for.

    The filter on raw `ts_start` (a superset of the days) goes down to the Parquet reader, which
    skips row groups outside it: the collector writes in arrival order, so the neighbour
    partition an incremental run reads for one local day is mostly skipped.
    """
    if days:
        rows = rows.filter(pl.col("ts_start").is_between(*_utc_span(timezone, days[0], days[-1]), closed="left"))
    return rows.with_columns(
        pl.coalesce("model", "model_requested").alias("model"),
        local_date_expr(timezone, offset_us).alias("date"),
    ).filter(pl.col("date").is_in(days))


_SLACK = dt.timedelta(hours=3)
"""More than any offset change, so a midnight that a DST switch moves stays inside the span."""


def _utc_span(timezone: str, first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = zoneinfo.ZoneInfo(timezone)
    start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC) - _SLACK
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC) + _SLACK
    return start, end
