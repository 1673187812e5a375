"""A partition's survey checks request ids only where its files' time ranges overlap, and the
UTC span read for some local days holds every request of those days."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

import polars as pl
import pytest

from analytics import partitions
from analytics.ledger_source import LocalLedger
from analytics.mart_state import PartitionState, list_partitions
from meterline.layout import DataLayout
from meterline.usage_record import UsageRecord
from tests.analytics.ledger_gen import generated_records
from tests.ledger_fixtures import write_ledger

DAY = dt.date(2026, 11, 2)
NAME = f"date={DAY.isoformat()}"


def shifted(records: list[UsageRecord], hours: float, tag: str) -> list[UsageRecord]:
    """The same requests under new ids, started `hours` later (same UTC day)."""
    return [
        dataclasses.replace(r, request_id=f"{tag}-{r.request_id}", ts_start=r.ts_start + dt.timedelta(hours=hours))
        for r in records
    ]


def day_records(tag: str) -> list[UsageRecord]:
    """Requests between 00:00 and 12:00 UTC of DAY."""
    records = generated_records(DAY, 1, per_day=40, seed=3, tag=tag)
    return [
        dataclasses.replace(r, ts_start=dt.datetime.combine(DAY, dt.time(), dt.UTC) + dt.timedelta(minutes=17 * i))
        for i, r in enumerate(records)
    ]


def survey(layout: DataLayout) -> PartitionState:
    ledger = LocalLedger(layout)
    return partitions.survey(ledger, NAME, list_partitions(layout)[NAME], "Asia/Shanghai")


def test_files_with_disjoint_time_ranges_are_unique_without_an_id_check(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = day_records("a")
    write_ledger(layout, first)
    write_ledger(layout, shifted(first, 12, "b"))  # 12:00-23:20 UTC: after every row of the first file
    checked: list[object] = []
    real = partitions._ids_unique

    def recording(*args: Any) -> bool:
        checked.append(args[3])
        return real(*args)

    monkeypatch.setattr(partitions, "_ids_unique", recording)

    part = survey(layout)

    assert (len(part.files), part.unique, checked) == (2, True, [[]])
    assert part.days == ["2026-11-02", "2026-11-03"]


def test_overlapping_files_without_a_copy_are_unique(layout: DataLayout) -> None:
    first = day_records("a")
    write_ledger(layout, first)
    write_ledger(layout, shifted(first, 6, "b"))  # overlaps the first file's 06:00-11:03

    assert survey(layout).unique


def test_a_copy_in_the_overlap_is_found(layout: DataLayout) -> None:
    first = day_records("a")
    write_ledger(layout, first)
    write_ledger(layout, [*shifted(first[:30], 6, "b"), first[25]])  # a copy of a request at 07:05

    part = survey(layout)

    assert not part.unique
    rows = partitions.partition_rows(
        LocalLedger(layout), NAME, part, [DAY, DAY + dt.timedelta(days=1)], "Asia/Shanghai"
    )
    assert rows.select(pl.len()).collect().item() == 70


def test_overlaps_are_the_pairwise_intersections() -> None:
    assert partitions._overlaps([(0, 10, 1), (5, 20, 1), (20, 30, 1), (40, 50, 1)]) == [(5, 10), (20, 20)]


@pytest.mark.parametrize(
    ("timezone", "first", "last"),
    [
        ("Asia/Shanghai", (2026, 11, 2), (2026, 11, 3)),
        ("America/Los_Angeles", (2026, 11, 1), (2026, 11, 1)),  # falls back at 02:00
        ("America/Santiago", (2026, 4, 4), (2026, 4, 4)),  # the midnight that ends it repeats
        ("America/Santiago", (2026, 9, 6), (2026, 9, 6)),  # its own midnight is skipped
        ("Asia/Beirut", (2026, 3, 28), (2026, 3, 29)),  # midnight skipped on the 29th
        ("Pacific/Apia", (2011, 12, 29), (2011, 12, 31)),  # the 30th never happened
    ],
)
def test_the_utc_span_holds_every_minute_of_the_local_days(
    timezone: str, first: tuple[int, int, int], last: tuple[int, int, int]
) -> None:
    zone = zoneinfo.ZoneInfo(timezone)
    days = {dt.date(*first) + dt.timedelta(days=n) for n in range((dt.date(*last) - dt.date(*first)).days + 1)}
    start, end = partitions._utc_span(timezone, min(days), max(days))
    around = dt.datetime.combine(min(days), dt.time(), dt.UTC) - dt.timedelta(days=2)
    minutes = [around + dt.timedelta(minutes=m) for m in range(60 * 24 * (len(days) + 4))]

    inside = [t for t in minutes if t.astimezone(zone).date() in days]

    assert inside and all(start <= t < end for t in inside)
    assert (end - start) - len(inside) * dt.timedelta(minutes=1) <= dt.timedelta(hours=1)
