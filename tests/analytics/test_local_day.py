"""The fixed-offset local date equals the tz database's answer row by row, and is only used
where the offset really is fixed."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from analytics.local_day import fixed_offset_us, local_date_expr, local_days

HOUR_US = 3_600_000_000


def micros(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.UTC).timestamp()) * 1_000_000


def utc_day(year: int, month: int, day: int) -> tuple[int, int]:
    start = micros(year, month, day)
    return start, start + 24 * HOUR_US - 1


@pytest.mark.parametrize(
    ("timezone", "day", "expected"),
    [
        ("UTC", (2026, 11, 3), 0),
        ("Asia/Shanghai", (2026, 11, 3), 8 * HOUR_US),
        ("Asia/Kolkata", (2026, 11, 3), 5 * HOUR_US + 30 * 60_000_000),
        ("Asia/Kathmandu", (2026, 11, 3), 5 * HOUR_US + 45 * 60_000_000),
        ("America/Los_Angeles", (2026, 7, 1), -7 * HOUR_US),
        ("America/Los_Angeles", (2026, 11, 1), None),  # PDT -> PST at 09:00 UTC that day
        ("Europe/Berlin", (2026, 3, 29), None),  # CET -> CEST at 01:00 UTC
    ],
)
def test_fixed_offset_only_where_the_zone_does_not_switch(
    timezone: str, day: tuple[int, int, int], expected: int | None
) -> None:
    assert fixed_offset_us(timezone, *utc_day(*day)) == expected


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "Asia/Kathmandu", "America/Los_Angeles", "Europe/Berlin"])
@pytest.mark.parametrize("day", [(2026, 3, 8), (2026, 3, 29), (2026, 7, 1), (2026, 11, 1), (2026, 12, 31)])
def test_fast_and_row_by_row_dates_agree_on_every_minute(timezone: str, day: tuple[int, int, int]) -> None:
    lo, hi = utc_day(*day)
    frame = pl.DataFrame({"ts_start": pl.Series(range(lo, hi, 60_000_000)).cast(pl.Datetime("us", "UTC"))})
    offset = fixed_offset_us(timezone, lo, hi)

    dates = frame.select(
        local_date_expr(timezone, offset).alias("fast"), local_date_expr(timezone, None).alias("exact")
    )

    assert dates["fast"].to_list() == dates["exact"].to_list()
    assert set(dates["exact"]) <= set(local_days(timezone, lo, hi))


def test_local_days_of_a_utc_day_in_shanghai_are_that_day_and_the_next() -> None:
    assert local_days("Asia/Shanghai", *utc_day(2026, 11, 30)) == [dt.date(2026, 11, 30), dt.date(2026, 12, 1)]
    assert local_days("UTC", *utc_day(2026, 11, 30)) == [dt.date(2026, 11, 30)]
