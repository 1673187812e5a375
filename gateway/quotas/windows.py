"""Quota windows: which window an instant falls in, and when that window frees.

Minute windows (rpm, tpm) are fixed, epoch-aligned minutes. Day and month windows run from
local midnight to local midnight in the configured time zone (`timezone:` in meterline.yaml),
so a 23- or 25-hour day around a DST change is one window of its true length. A window's key
names it uniquely (`m29000000`, `d2024-03-10`, `M2024-03`), so counters of different windows
never mix and an old window's counters can simply expire.
"""

from __future__ import annotations

import math
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

Clock = Callable[[], float]
"""Seconds since the epoch (`time.time`); tests inject their own."""

system_clock: Clock = time.time


class Window(StrEnum):
    MINUTE = "minute"
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class WindowSpan:
    key: str
    start: float
    """Epoch seconds of the window's first instant."""
    end: float
    """Epoch seconds of the next window's first instant."""

    def seconds_left(self, now: float) -> float:
        """Seconds until this window frees (0 once it has ended)."""
        return max(0.0, self.end - now)


class WindowCalendar(Protocol):
    def span(self, window: Window, now: float) -> WindowSpan:
        """The window of kind `window` that contains the instant `now`."""
        ...


class ZoneCalendar:
    """Windows in one IANA time zone (zoneinfo), DST-safe."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.timezone = timezone
        self._zone = zoneinfo.ZoneInfo(timezone)
        # The current day and month: a clock moving forward recomputes each once per window.
        self._days: WindowSpan | None = None
        self._months: WindowSpan | None = None

    def span(self, window: Window, now: float) -> WindowSpan:
        if window is Window.MINUTE:
            minute = math.floor(now / 60)
            return WindowSpan(f"m{minute}", minute * 60.0, minute * 60.0 + 60.0)
        cached = self._days if window is Window.DAY else self._months
        if cached is not None and cached.start <= now < cached.end:
            return cached
        local = datetime.fromtimestamp(now, self._zone).date()
        if self._midnight(local) > now:  # fromtimestamp rounds to the microsecond, maybe up past midnight
            local -= timedelta(days=1)
        if window is Window.DAY:
            self._days = WindowSpan(
                f"d{local.isoformat()}", self._midnight(local), self._midnight(local + timedelta(1))
            )
            return self._days
        first = local.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        self._months = WindowSpan(f"M{first:%Y-%m}", self._midnight(first), self._midnight(following))
        return self._months

    def _midnight(self, day: date) -> float:
        # fold=0: where midnight does not exist (a DST gap at 00:00) this is the instant the gap
        # ends, which is the day's first instant; where it repeats, the first of the two.
        return datetime(day.year, day.month, day.day, tzinfo=self._zone).timestamp()


def retry_after_seconds(seconds: float) -> int:
    """A Retry-After value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds - 1e-9))


def openai_duration(seconds: float) -> str:
    """A duration as OpenAI's x-ratelimit-reset-* headers write it (Go style): `20ms`, `1s`,
    `1.5s`, `6m0s`, `1h2m3s`."""
    millis = max(0, math.ceil(seconds * 1000 - 1e-6))
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    text = f"{secs}.{ms:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text
