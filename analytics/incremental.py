"""Refresh the marts: rebuild only the local days whose ledger partitions changed.

A changed partition (file added, removed or rewritten, even with the same rows) marks the
local days it held before and holds now. Each such day is recomputed from every partition
holding rows of that day, so the result equals a full rebuild; a full rebuild is the same
work over every day. A file lock keeps two runs from interleaving.

Memory stays bounded whatever the ledger's size: spend is summed partition by partition into
exact fixed-point partials, and latency quantiles, which need a day's values together, hold one
local day's values only until the last partition holding that day has been read.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import polars as pl

from analytics import latency_daily, spend_daily, spend_monthly
from analytics.ledger_source import LedgerSource, LocalLedger
from analytics.mart_state import STATE_VERSION, MartState, PartitionState, load_state, save_state
from analytics.partitions import partition_rows, survey
from meterline.layout import DataLayout, atomic_target, publish
from meterline.storage.local import LocalTarget

Progress = Callable[[int, int], None]
"""Called with (days done, days to do) as the rebuild goes."""

logger = logging.getLogger(__name__)

MART_NAMES: tuple[str, ...] = (spend_daily.MART, spend_monthly.MART, latency_daily.MART)


ATTEMPTS = 3
"""Runs tried when a part file vanishes mid-run (compaction swapped its partition folder, or on
S3 deleted the parts it merged)."""


def refresh(
    layout: DataLayout, timezone: str = "UTC", progress: Progress | None = None, ledger: LedgerSource | None = None
) -> dict[str, int]:
    """Bring the marts under `layout` up to date with `ledger` (default: the ledger under the same
    data dir); returns each mart's row count.

    A part listed before the collector's compaction swapped its partition and opened after it is
    gone; the run then starts over from a fresh listing (nothing was written yet), as often as
    `ATTEMPTS` allows.
    """
    source = LocalLedger(layout) if ledger is None else ledger
    layout.marts_dir.mkdir(parents=True, exist_ok=True)
    with _lock(layout):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return _refresh(layout, source, timezone, progress)
            except FileNotFoundError:
                if attempt == ATTEMPTS:
                    raise
                logger.info("a ledger part vanished under the mart run (compaction); starting over")
    raise AssertionError("unreachable")


def _refresh(layout: DataLayout, ledger: LedgerSource, timezone: str, progress: Progress | None) -> dict[str, int]:
    current = ledger.partitions()
    state = load_state(layout)
    full = (
        state is None
        or state.timezone != timezone
        or state.version != STATE_VERSION
        or not all(layout.mart_file(name).exists() for name in MART_NAMES)
    )
    old = {} if full or state is None else state.partitions
    quarantine = LocalTarget(layout)  # invalid ledger rows are set aside beside the marts
    parts = {
        name: old[name]
        if name in old and old[name].files == files
        else survey(ledger, name, files, timezone, quarantine)
        for name, files in current.items()
    }
    changed = [
        name
        for name in sorted(set(parts) | set(old))
        if name not in parts or name not in old or parts[name] is not old[name]
    ]
    affected = sorted({dt.date.fromisoformat(d) for n in changed for d in [*_days(old, n), *_days(parts, n)]})
    if full or affected:
        _rebuild(layout, ledger, timezone, parts, affected, full, progress)
        save_state(layout, MartState(timezone=timezone, partitions=parts))
    return {name: _height(layout, name) for name in MART_NAMES}


def _rebuild(
    layout: DataLayout,
    ledger: LedgerSource,
    timezone: str,
    parts: dict[str, PartitionState],
    days: list[dt.date],
    full: bool,
    progress: Progress | None,
) -> None:
    isos = {d.isoformat() for d in days}
    holders = {name: part for name, part in parts.items() if isos & set(part.days)}
    # Two passes at once: each has single-threaded stretches (Parquet decoding of one file,
    # NumPy selection) that leave one of the two cores idle when run alone.
    with ThreadPoolExecutor(max_workers=1) as pool:
        spending = pool.submit(_spend_days, ledger, timezone, holders, days)
        latency = _latency_days(ledger, timezone, holders, days, progress)
        spend = spending.result()
    for name, schema, keys, new in (
        (spend_daily.MART, spend_daily.SPEND_DAILY_SCHEMA, spend_daily.GROUP_KEYS, [spend]),
        (latency_daily.MART, latency_daily.LATENCY_DAILY_SCHEMA, latency_daily.GROUP_KEYS, latency),
    ):
        kept = _kept(layout, name, schema, "date", days, full)
        _write(layout, name, pl.concat([kept, *new]).sort(keys, nulls_last=True))
    months = sorted({d.replace(day=1) for d in days})
    daily = pl.scan_parquet(layout.mart_file(spend_daily.MART)).filter(pl.col("date").dt.month_start().is_in(months))
    kept = _kept(layout, spend_monthly.MART, spend_monthly.SPEND_MONTHLY_SCHEMA, "month", months, full)
    monthly = pl.concat([kept, spend_monthly.monthly_rows(daily).collect()])
    _write(layout, spend_monthly.MART, monthly.sort(spend_monthly.GROUP_KEYS, nulls_last=True))


def _spend_days(
    ledger: LedgerSource, timezone: str, holders: dict[str, PartitionState], days: list[dt.date]
) -> pl.DataFrame:
    """spend_daily rows for `days`: each partition summed on its own, then the partial sums of
    each day added up, exactly (money stays fixed-point until the end). Memory holds one
    partition's columns; one streaming query over the whole ledger peaked 800 MB higher."""
    wanted = {d.isoformat(): d for d in days}
    partials = [
        spend_daily.partial_rows(
            partition_rows(ledger, name, part, [wanted[iso] for iso in part.days if iso in wanted], timezone)
        ).collect()
        for name, part in sorted(holders.items())
    ]
    if not partials:
        return spend_daily.SPEND_DAILY_SCHEMA.to_frame()
    return spend_daily.combine(pl.concat(partials).lazy()).collect()


def _latency_days(
    ledger: LedgerSource,
    timezone: str,
    holders: dict[str, PartitionState],
    days: list[dt.date],
    progress: Progress | None,
) -> list[pl.DataFrame]:
    """Latency mart rows for `days`, reading each partition once, in date order.

    A local day's rows sit in one or two UTC partitions; its values wait in `pending` until the
    last partition holding the day has been read, then become quantiles and are dropped. So at
    most about a partition's worth of latencies (16 bytes a request) is ever held. (Reading the
    spend columns in the same pass was tried: holding all of a partition's columns at once cost
    more memory and time than reading the partition twice.)
    """
    wanted = {d.isoformat(): d for d in days}
    last_holder = {iso: name for name in sorted(holders) for iso in holders[name].days if iso in wanted}
    pending = latency_daily.DayLatencies()
    out: list[pl.DataFrame] = []
    done = 0
    for name in sorted(holders):
        part = holders[name]
        mine = [wanted[iso] for iso in part.days if iso in wanted]
        pending.add(partition_rows(ledger, name, part, mine, timezone).select(latency_daily.INPUT_COLUMNS).collect())
        for day in (wanted[iso] for iso in part.days if last_holder.get(iso) == name):
            out.append(pending.finish(day))
            done += 1
            if progress is not None:
                progress(done, len(days))
    if progress is not None and done < len(days):  # days no partition holds any more
        progress(len(days), len(days))
    return out


def _days(parts: dict[str, PartitionState], name: str) -> list[str]:
    return parts[name].days if name in parts else []


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
