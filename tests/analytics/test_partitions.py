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


def test_a_copy_in_a_later_overlap_of_many_parts_is_found(layout: DataLayout) -> None:
    first = day_records("a")  # 00:00-11:03 UTC
    write_ledger(layout, first)
    write_ledger(layout, shifted(first[:20], 10, "b"))  # 10:00-15:23
    write_ledger(
        layout, [*shifted(first[:20], 15, "c"), shifted(first[:20], 10, "b")[19]]
    )  # 15:00-20:23, a copy of 15:23

    part = survey(layout)

    assert not part.unique
    rows = partitions.partition_rows(
        LocalLedger(layout), NAME, part, [DAY, DAY + dt.timedelta(days=1)], "Asia/Shanghai"
    )
    assert rows.select(pl.len()).collect().item() == 80


def test_overlaps_are_the_instants_in_two_files_as_disjoint_spans() -> None:
    assert partitions._overlaps([(0, 10, 1), (5, 20, 1), (20, 30, 1), (40, 50, 1)]) == [(5, 10), (20, 20)]
    assert partitions._overlaps([(15, 30, 1), (0, 100, 1), (10, 20, 1), (50, 60, 1)]) == [(10, 30), (50, 60)]
    assert partitions._overlaps([(0, 10, 1), (11, 20, 1)]) == []


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


def test_many_overlaps_are_checked_within_fewer_spans_that_cover_them() -> None:
    spans = [(0, 1), (10, 11), (12, 13), (30, 31), (33, 34)]

    assert partitions._fewer(spans, 3) == [(0, 1), (10, 13), (30, 34)]
    assert partitions._fewer(spans, 8) == spans
    assert partitions._fewer(spans, 1) == [(0, 34)]


def test_a_copy_among_more_overlapping_parts_than_spans_is_found(layout: DataLayout) -> None:
    first = day_records("a")[:4]  # 00:00-00:51 UTC
    # Each starts half an hour after the one before, so overlaps it by 21 minutes.
    parts = [shifted(first, n / 2, f"p{n}") for n in range(partitions.MAX_SPANS + 4)]
    for records in parts[:-1]:
        write_ledger(layout, records)
    write_ledger(layout, [*parts[-1], parts[-2][3]])  # a copy of the last request of the part before

    part = survey(layout)

    assert (len(part.files), part.unique) == (partitions.MAX_SPANS + 4, False)
