"""Which local day a request belongs to, computed cheaply where the zone's offset is fixed.

Converting every timestamp through the tz database costs a lookup per row. Within one ledger
partition (a UTC date, so about a day of `ts_start` values) the zone's UTC offset is almost
always constant, and then the local date is integer arithmetic on the epoch microseconds. Only
a partition whose time range holds an offset change (a DST switch) takes the per-row
conversion. Both give the same date for every row (tests/analytics/test_local_day.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import polars as pl

_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_MAX_FIXED_SPAN_US = 3 * _DAY_US
"""Longer ranges than this are not probed for a fixed offset (a partition spans about one day)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_datetime(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


@functools.cache
def fixed_offset_us(timezone: str, lo_us: int, hi_us: int) -> int | None:
    """The zone's UTC offset in microseconds if it is the same at every instant of [lo, hi];
    None when it changes (or the range is too long to probe).

    Probed at both ends and at every hour between: no time zone has changed its offset twice
    within an hour, so equal offsets an hour apart mean no change in between.
    """
    if hi_us - lo_us > _MAX_FIXED_SPAN_US:
        return None
    zone = zoneinfo.ZoneInfo(timezone)
    probes = [*range(lo_us, hi_us, _HOUR_US), hi_us]
    offsets = {_offset(to_datetime(us), zone) for us in probes}
    return offsets.pop() if len(offsets) == 1 else None


def _offset(instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> int:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always answers for an aware datetime
    return offset // dt.timedelta(microseconds=1)


def local_date_expr(timezone: str, offset_us: int | None) -> pl.Expr:
    """`ts_start`'s local date: by the fixed offset when there is one, else row by row."""
    if offset_us is None:
        return pl.col("ts_start").dt.convert_time_zone(timezone).dt.date()
    return ((pl.col("ts_start").dt.epoch("us") + offset_us) // _DAY_US).cast(pl.Int32).cast(pl.Date)


def local_days(timezone: str, lo_us: int, hi_us: int) -> list[dt.date]:
    """Every local date a request started in [lo, hi] can fall on (a superset when the offset
    changes inside the range, since a switch back at midnight revisits the previous date)."""
    zone = zoneinfo.ZoneInfo(timezone)
    first, last = to_datetime(lo_us).astimezone(zone).date(), to_datetime(hi_us).astimezone(zone).date()
    if fixed_offset_us(timezone, lo_us, hi_us) is None:
        first, last = first - dt.timedelta(days=1), last + dt.timedelta(days=1)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
