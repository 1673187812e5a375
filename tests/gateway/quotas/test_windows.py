"""Window keys and boundaries in several time zones, DST changes included."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.quotas.windows import Window, ZoneCalendar, openai_duration, retry_after_seconds

ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago"]


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("zone", "instant", "key", "start", "end"),
    [
        ("UTC", "2024-03-10T23:59:59", "d2024-03-10", "2024-03-10T00:00:00", "2024-03-11T00:00:00"),
        ("Asia/Shanghai", "2024-03-10T15:59:59", "d2024-03-10", "2024-03-09T16:00:00", "2024-03-10T16:00:00"),
        ("Asia/Shanghai", "2024-03-10T16:00:00", "d2024-03-11", "2024-03-10T16:00:00", "2024-03-11T16:00:00"),
        ("Asia/Kolkata", "2024-06-30T18:29:59", "d2024-06-30", "2024-06-29T18:30:00", "2024-06-30T18:30:00"),
        ("Asia/Kolkata", "2024-06-30T18:30:00", "d2024-07-01", "2024-06-30T18:30:00", "2024-07-01T18:30:00"),
        # Spring forward: 2024-03-10 in New York has 23 hours (EST midnight to EDT midnight).
        ("America/New_York", "2024-03-10T12:00:00", "d2024-03-10", "2024-03-10T05:00:00", "2024-03-11T04:00:00"),
        # Fall back: 2024-11-03 has 25 hours.
        ("America/New_York", "2024-11-03T12:00:00", "d2024-11-03", "2024-11-03T04:00:00", "2024-11-04T05:00:00"),
    ],
)
def test_day_windows(zone: str, instant: str, key: str, start: str, end: str) -> None:
    span = ZoneCalendar(zone).span(Window.DAY, at(instant))
    assert (span.key, span.start, span.end) == (key, at(start), at(end))


def test_dst_days_have_their_true_length() -> None:
    calendar = ZoneCalendar("America/New_York")
    spring = calendar.span(Window.DAY, at("2024-03-10T12:00:00"))
    autumn = calendar.span(Window.DAY, at("2024-11-03T12:00:00"))
    march = calendar.span(Window.MONTH, at("2024-03-15T12:00:00"))
    assert (spring.end - spring.start, autumn.end - autumn.start) == (23 * 3600, 25 * 3600)
    assert (march.key, march.end - march.start) == ("M2024-03", 31 * 86400 - 3600)


@pytest.mark.parametrize(
    ("zone", "instant", "key", "start", "end"),
    [
        ("UTC", "2024-02-29T23:59:59", "M2024-02", "2024-02-01T00:00:00", "2024-03-01T00:00:00"),
        ("Asia/Shanghai", "2024-12-31T16:00:00", "M2025-01", "2024-12-31T16:00:00", "2025-01-31T16:00:00"),
        ("Asia/Shanghai", "2024-12-31T15:59:59", "M2024-12", "2024-11-30T16:00:00", "2024-12-31T16:00:00"),
    ],
)
def test_month_windows(zone: str, instant: str, key: str, start: str, end: str) -> None:
    span = ZoneCalendar(zone).span(Window.MONTH, at(instant))
    assert (span.key, span.start, span.end) == (key, at(start), at(end))


def test_minute_windows_are_epoch_minutes_in_every_zone() -> None:
    now = at("2024-03-10T07:30:59.5")
    for zone in ZONES:
        span = ZoneCalendar(zone).span(Window.MINUTE, now)
        assert (span.start, span.end, span.seconds_left(now)) == (
            at("2024-03-10T07:30:00"),
            at("2024-03-10T07:31:00"),
            0.5,
        )
        assert span.key == f"m{int(span.start) // 60}"


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    window=st.sampled_from([Window.DAY, Window.MONTH]),
    now=st.floats(min_value=at("2000-01-01T00:00:00"), max_value=at("2040-01-01T00:00:00")),
)
def test_windows_tile_local_time(zone: str, window: Window, now: float) -> None:
    """Every instant falls in exactly one window, which starts at local midnight (of the first
    of the month) and ends where the next window starts."""
    calendar = ZoneCalendar(zone)
    tz = zoneinfo.ZoneInfo(zone)
    span = calendar.span(window, now)
    assert span.start <= now < span.end
    assert 0 < span.seconds_left(now) <= span.end - span.start
    local_start = datetime.fromtimestamp(span.start, tz)
    before_start = datetime.fromtimestamp(span.start - 1, tz)
    if window is Window.DAY:
        # The window starts at the first instant of its local date (midnight, or the end of a
        # DST gap at midnight), and its key names that date.
        assert span.key == f"d{local_start.date().isoformat()}"
        assert before_start.date() < local_start.date()
        assert 22 * 3600 <= span.end - span.start <= 26 * 3600
    else:
        assert (span.key, local_start.day) == (f"M{local_start:%Y-%m}", 1)
        assert before_start.month != local_start.month
    following = calendar.span(window, span.end)
    previous = calendar.span(window, span.start - 0.001)
    assert (following.start, previous.end) == (span.end, span.start)
    assert len({previous.key, span.key, following.key}) == 3
    assert calendar.span(window, span.end - 0.001).key == span.key


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0ms"), (0.0201, "21ms"), (1, "1s"), (1.5, "1.5s"), (59.999, "59.999s"), (360, "6m0s"), (3723, "1h2m3s")],
)
def test_openai_duration(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "retry"), [(0, 1), (0.2, 1), (1.0, 1), (1.01, 2), (37.0, 37), (86399.5, 86400)])
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, retry: int) -> None:
    assert retry_after_seconds(seconds) == retry
