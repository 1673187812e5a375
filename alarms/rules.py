"""Budget arithmetic with known answers: periods, the run-rate forecast, the anomaly rule."""

from __future__ import annotations

import datetime as dt
import statistics
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from alarms.message import usd

PeriodKind = Literal["day", "month"]

FORECAST_METHOD = (
    "run rate: spent so far / elapsed fraction of the period; range: spent + the lowest and highest "
    "daily spend of the last 7 full days x the days left"
)
RANGE_DAYS = 7


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    start: dt.datetime
    end: dt.datetime
    """Local, time-zone aware; `end` is exclusive."""

    @property
    def key(self) -> str:
        """`2026-11` for a month, `2026-11-14` for a day: the period's name in state and links."""
        return self.start.strftime("%Y-%m") if self.kind == "month" else self.start.date().isoformat()

    @property
    def first_day(self) -> dt.date:
        return self.start.date()

    @property
    def last_day(self) -> dt.date:
        return (self.end - dt.timedelta(days=1)).date()

    @property
    def length(self) -> dt.timedelta:
        """Elapsed time, not wall-clock time: a day with a DST switch lasts 23 or 25 hours.
        (Python subtracts two datetimes sharing a tzinfo by their wall clocks, hence UTC.)"""
        return self.end.astimezone(dt.UTC) - self.start.astimezone(dt.UTC)

    def elapsed_fraction(self, now: dt.datetime) -> float:
        return min(1.0, max(0.0, (now - self.start.astimezone(dt.UTC)) / self.length))

    def days_left(self, now: dt.datetime) -> float:
        return max(0.0, (self.end.astimezone(dt.UTC) - now) / dt.timedelta(days=1))


def period_of(now: dt.datetime, kind: PeriodKind, timezone: str) -> Period:
    """The day or calendar month containing `now`, in `timezone`."""
    local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    day = dt.datetime(local.year, local.month, local.day, tzinfo=local.tzinfo)
    if kind == "day":
        return Period(kind, day, _local_midnight(day.date() + dt.timedelta(days=1), timezone))
    first = day.replace(day=1)
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(kind, first, _local_midnight(following, timezone))


def _local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(timezone))


@dataclass(frozen=True)
class Forecast:
    projected: float
    low: float
    high: float


def forecast(spent: float, period: Period, now: dt.datetime, recent_daily: Sequence[float]) -> Forecast:
    """Spend by the end of `period`: `spent / elapsed fraction`, with a range from `recent_daily`
    (the last `RANGE_DAYS` full days' spend): spent + min or max daily spend x days left.
    No recent days: the range collapses to the projection."""
    fraction = period.elapsed_fraction(now)
    projected = spent / fraction if fraction > 0 else spent
    if not recent_daily:
        return Forecast(projected, projected, projected)
    left = period.days_left(now)
    low, high = spent + min(recent_daily) * left, spent + max(recent_daily) * left
    return Forecast(projected, min(low, projected), max(high, projected))


@dataclass(frozen=True)
class Anomaly:
    today: float
    mean: float
    std: float
    limit: float

    def describe(self, sigmas: float, window: int) -> str:
        return (
            f"{usd(self.today)} today > {usd(self.limit)} = mean {usd(self.mean)} + {sigmas:g} x std "
            f"{usd(self.std)} of the trailing {window} days"
        )


def anomaly(today: float, trailing: Sequence[float], sigmas: float, min_usd: float) -> Anomaly | None:
    """An Anomaly when `today > mean + sigmas * std(trailing)` and `today >= min_usd`.

    `trailing` holds one value per day of the window, zeros included; std is the population
    standard deviation of those days.
    """
    if not trailing:
        return None
    mean = statistics.fmean(trailing)
    std = statistics.pstdev(trailing)
    limit = mean + sigmas * std
    if today > limit and today >= min_usd:
        return Anomaly(today, mean, std, limit)
    return None
