"""Ledger partitions as the marts read them: surveyed once per file set, then scanned as
billable rows (one row per request, the answering model, the local `date`).

Copies of one request share its partition (they are the same record, and the partition is
the record's own `date`), so duplicates are a per-partition matter, and within a partition a
matter between files: one part file never holds a request twice (the collector writes each
batch after dropping ids already in the ledger or earlier in the batch, and compaction writes
each request once). So a single-file partition is read as is, a partition of several files is
checked once per file set (only the rows where two files' time ranges overlap: copies share
their `ts_start`), and only one that does hold a copy (a merged part beside the small
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
from analytics.local_day import fixed_offset_us, local_date_expr, local_days, to_datetime
from analytics.mart_state import Files, PartitionState
from analytics.row_checks import set_aside, valid
from meterline.storage.base import StorageTarget


def survey(
    ledger: LedgerSource, name: str, files: Files, timezone: str, quarantine: StorageTarget | None = None
) -> PartitionState:
    """The partition's time range, its local days and whether any request_id repeats, over its
    valid rows (`row_checks.valid`); invalid ones are set aside into `quarantine`, with a warning.

    Copies of a request are the same record, so they share `ts_start`: two files can only hold a
    common request at an instant inside both files' time ranges. The collector writes parts in
    arrival order, so those ranges barely overlap, and only the rows in an overlap need their ids
    checked (all of them when the ranges coincide, as a merged part beside its small parts does).
    """
    # One batch of per-file queries: a partition mid-day holds hundreds of one-second parts, and
    # querying them one after the other cost 1.2 s for 300 (0.1 s batched).
    ranges = pl.collect_all([_time_range(ledger.scan(name, {part: files[part]})) for part in sorted(files)])
    for part, frame in zip(sorted(files), ranges, strict=True):
        if frame.item(0, "invalid"):
            set_aside(ledger.scan(name, {part: files[part]}), f"{name}/{part}", quarantine)
    found = [
        (lo, hi, rows) for lo, hi, rows, _ in (frame.row(0) for frame in ranges) if lo is not None and hi is not None
    ]
    if not found:
        return PartitionState(files, [], None, None)
    lo, hi = min(r[0] for r in found), max(r[1] for r in found)
    days = [d.isoformat() for d in local_days(timezone, lo, hi)]
    return PartitionState(files, days, lo, hi, unique=_ids_unique(ledger, name, files, _overlaps(found)))


def _time_range(rows: pl.LazyFrame) -> pl.LazyFrame:
    ok = valid()
    return rows.select(
        pl.col("ts_start").filter(ok).min().dt.epoch("us").alias("lo"),
        pl.col("ts_start").filter(ok).max().dt.epoch("us").alias("hi"),
        ok.sum().alias("rows"),
        (~ok).sum().alias("invalid"),
    )


def _overlaps(ranges: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """The instants (inclusive bounds, epoch microseconds) inside the time ranges of two or more
    files, as disjoint spans in time order."""
    spans: list[tuple[int, int]] = []
    reach: int | None = None  # the latest end among the files started so far
    for lo, hi, _ in sorted(ranges):
        if reach is not None and lo <= reach:
            end = min(hi, reach)
            if spans and lo <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((lo, end))
        reach = hi if reach is None else max(reach, hi)
    return spans


MAX_SPANS = 8
"""Spans the id check filters on: the Parquet reader then decodes the ids of those rows only
(with hundreds of one-second parts, the spans between close overlaps are checked too)."""


def _ids_unique(ledger: LedgerSource, name: str, files: Files, overlaps: list[tuple[int, int]]) -> bool:
    if not overlaps:
        return True
    # Checking more rows than the overlaps hold is still exact: ids repeat among them only if a
    # request has a copy.
    inside = pl.any_horizontal(
        [pl.col("ts_start").is_between(to_datetime(lo), to_datetime(hi)) for lo, hi in _fewer(overlaps, MAX_SPANS)]
    )
    # 64-bit hashes: as many distinct hashes as rows proves every id distinct; fewer (a copy,
    # or a collision) sends the partition down the exact de-duplicating path.
    found = (
        ledger.scan(name, files)
        .filter(inside & valid())
        .select(pl.len().alias("rows"), pl.col("request_id").hash().n_unique().alias("ids"))
        .collect()
        .row(0, named=True)
    )
    return bool(found["ids"] == found["rows"])


def _fewer(spans: list[tuple[int, int]], most: int) -> list[tuple[int, int]]:
    """At most `most` spans covering `spans` (disjoint, in time order): the widest gaps are kept."""
    cuts = sorted(sorted(range(len(spans) - 1), key=lambda i: spans[i][1] - spans[i + 1][0])[: most - 1])
    starts = [0, *(i + 1 for i in cuts)]
    ends = [*cuts, len(spans) - 1]
    return [(spans[a][0], spans[b][1]) for a, b in zip(starts, ends, strict=True)]


def partition_rows(
    ledger: LedgerSource, name: str, part: PartitionState, days: Collection[dt.date], timezone: str
) -> pl.LazyFrame:
    """One partition's billable rows whose local date is one of `days`, lazily."""
    if part.lo_us is None or part.hi_us is None:
        return _dated(usage_schema().to_frame().lazy(), timezone, None, sorted(days))
    rows = _dated(
        ledger.scan(name, part.files).filter(valid()),
        timezone,
        fixed_offset_us(timezone, part.lo_us, part.hi_us),
        sorted(days),
    )
    return rows if part.unique else rows.unique(subset="request_id", keep="any")


def _dated(rows: pl.LazyFrame, timezone: str, offset_us: int | None, days: list[dt.date]) -> pl.LazyFrame:
    """A record without a model (an error before any provider answered) is attributed to the
    alias the agent asked for.

    The filter on raw `ts_start` (the days' span) goes down to the Parquet reader, which
    skips row groups outside it: the collector writes in arrival order, so the neighbour
    partition an incremental run reads for one local day is mostly skipped.
    """
    if days:
        rows = rows.filter(pl.col("ts_start").is_between(*_utc_span(timezone, days[0], days[-1]), closed="left"))
    return rows.with_columns(
        pl.coalesce("model", "model_requested").alias("model"),
        local_date_expr(timezone, offset_us).alias("date"),
    ).filter(pl.col("date").is_in(days))


def _utc_span(timezone: str, first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants holding every request of local days `first` to `last`: exactly their span
    where the offset is fixed (so the reader skips every other row group), at most a DST switch
    wider where it is not.

    A midnight that a switch repeats or skips maps to two instants (folds 0 and 1): the span
    starts at the earlier of `first`'s and ends at the later of the next day's. The date filter
    after it keeps only the days asked for.
    """
    starts = _instants(timezone, first)
    ends = _instants(timezone, last + dt.timedelta(days=1))
    return min(starts), max(ends)


def _instants(timezone: str, day: dt.date) -> list[dt.datetime]:
    zone = zoneinfo.ZoneInfo(timezone)
    return [dt.datetime.combine(day, dt.time(fold=fold), zone).astimezone(dt.UTC) for fold in (0, 1)]
