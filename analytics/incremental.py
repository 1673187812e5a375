"""Refresh the marts: rebuild only the local days whose ledger partitions changed.

A changed partition (file added, removed or rewritten) marks the local days it held before
and holds now. Each such day is recomputed from every partition holding rows of that day, so
the result equals a full rebuild. Days go in batches, which bounds memory on a big ledger; a
full rebuild is the same loop over every day. A file lock keeps two runs from interleaving.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl

from analytics import latency_daily, spend_daily, spend_monthly
from analytics.ledger import billable, local_date, scan_files
from analytics.mart_state import (
    STATE_VERSION,
    MartState,
    PartitionState,
    list_partitions,
    load_state,
    save_state,
)
from meterline.layout import DataLayout, atomic_target, publish

Progress = Callable[[int, int], None]
"""Called with (days done, days to do) after each batch."""

BATCH_DAYS = 4


@dataclass(frozen=True)
class DayMart:
    name: str
    schema: pl.Schema
    keys: tuple[str, ...]
    rows: Callable[[pl.LazyFrame], pl.LazyFrame]


DAY_MARTS: tuple[DayMart, ...] = (
    DayMart(spend_daily.MART, spend_daily.SPEND_DAILY_SCHEMA, spend_daily.GROUP_KEYS, spend_daily.daily_rows),
    DayMart(
        latency_daily.MART, latency_daily.LATENCY_DAILY_SCHEMA, latency_daily.GROUP_KEYS, latency_daily.latency_rows
    ),
)
MART_NAMES: tuple[str, ...] = (spend_daily.MART, spend_monthly.MART, latency_daily.MART)


def refresh(layout: DataLayout, timezone: str = "UTC", progress: Progress | None = None) -> dict[str, int]:
    """Bring every mart up to date with the ledger; returns each mart's row count."""
    layout.marts_dir.mkdir(parents=True, exist_ok=True)
    with _lock(layout):
        current = list_partitions(layout)
        state = load_state(layout)
        full = (
            state is None
            or state.timezone != timezone
            or state.version != STATE_VERSION
            or not all(layout.mart_file(name).exists() for name in MART_NAMES)
        )
        old = {} if full or state is None else state.partitions
        changed = sorted(
            name for name in set(current) | set(old) if name not in old or old[name].files != current.get(name)
        )
        fresh = {name: _days_of(layout, name, current[name], timezone) for name in changed if name in current}
        parts = {
            name: PartitionState(files, fresh[name] if name in fresh else old[name].days)
            for name, files in current.items()
        }
        affected = sorted({dt.date.fromisoformat(d) for n in changed for d in [*_days(old, n), *fresh.get(n, [])]})
        if full or affected:
            _rebuild(layout, timezone, parts, affected, full, progress)
            save_state(layout, MartState(timezone=timezone, partitions=parts))
        return {name: _height(layout, name) for name in MART_NAMES}


def _rebuild(
    layout: DataLayout,
    timezone: str,
    parts: dict[str, PartitionState],
    days: list[dt.date],
    full: bool,
    progress: Progress | None,
) -> None:
    new: dict[str, list[pl.DataFrame]] = {mart.name: [] for mart in DAY_MARTS}
    for done, batch in _batches(days):
        isos = {d.isoformat() for d in batch}
        files = [str(layout.usage_dir / n / f) for n, p in sorted(parts.items()) if isos & set(p.days) for f in p.files]
        # Filter to the batch's days before de-duplicating: copies of one request share its day.
        rows = billable(scan_files(files).filter(local_date(timezone).is_in(batch)), timezone)
        frames = pl.collect_all([mart.rows(rows) for mart in DAY_MARTS])
        for mart, frame in zip(DAY_MARTS, frames, strict=True):
            new[mart.name].append(frame)
        if progress is not None:
            progress(done, len(days))
    for mart in DAY_MARTS:
        kept = _kept(layout, mart.name, mart.schema, "date", days, full)
        _write(layout, mart.name, pl.concat([kept, *new[mart.name]]).sort(mart.keys, nulls_last=True))
    months = sorted({d.replace(day=1) for d in days})
    daily = pl.scan_parquet(layout.mart_file(spend_daily.MART)).filter(pl.col("date").dt.month_start().is_in(months))
    kept = _kept(layout, spend_monthly.MART, spend_monthly.SPEND_MONTHLY_SCHEMA, "month", months, full)
    monthly = pl.concat([kept, spend_monthly.monthly_rows(daily).collect()])
    _write(layout, spend_monthly.MART, monthly.sort(spend_monthly.GROUP_KEYS, nulls_last=True))


def _batches(days: list[dt.date]) -> Iterator[tuple[int, list[dt.date]]]:
    for start in range(0, len(days), BATCH_DAYS):
        batch = days[start : start + BATCH_DAYS]
        yield start + len(batch), batch


def _days(parts: dict[str, PartitionState], name: str) -> list[str]:
    return parts[name].days if name in parts else []


def _days_of(layout: DataLayout, name: str, files: dict[str, list[int]], timezone: str) -> list[str]:
    paths = [str(layout.usage_dir / name / f) for f in files]
    days = scan_files(paths).select(local_date(timezone).unique().sort()).collect().to_series()
    return [d.isoformat() for d in days]


def _kept(
    layout: DataLayout, name: str, schema: pl.Schema, column: str, dropped: list[dt.date], full: bool
) -> pl.DataFrame:
    if full:
        return schema.to_frame()
    return pl.read_parquet(layout.mart_file(name)).filter(~pl.col(column).is_in(dropped)).cast(schema)


def _write(layout: DataLayout, name: str, frame: pl.DataFrame) -> None:
    final = layout.mart_file(name)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = atomic_target(final)
    try:
        frame.write_parquet(temp, compression="zstd")
        publish(temp, final)
    finally:
        temp.unlink(missing_ok=True)


def _height(layout: DataLayout, name: str) -> int:
    path = layout.mart_file(name)
    return pl.scan_parquet(path).select(pl.len()).collect().item() if path.exists() else 0


@contextmanager
def _lock(layout: DataLayout) -> Iterator[None]:
    with open(layout.marts_dir / "_lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
