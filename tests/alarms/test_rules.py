"""The period, forecast and anomaly rules on constructed series whose answers are known."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from alarms.rules import Anomaly, Forecast, anomaly, forecast, period_of

SHANGHAI = "Asia/Shanghai"


def at(timezone: str, year: int, month: int, day: int) -> dt.datetime:
    """Local midnight of that day, as a UTC instant."""
    return dt.datetime(year, month, day, tzinfo=zoneinfo.ZoneInfo(timezone)).astimezone(dt.UTC)


def test_a_month_period_follows_the_local_calendar() -> None:
    period = period_of(dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC), "month", SHANGHAI)  # 01:00 1 Dec local

    assert period.key == "2026-12"
    assert (period.first_day, period.last_day) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert period.start.astimezone(dt.UTC) == dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)


def test_a_day_period_on_a_dst_switch_lasts_25_hours() -> None:
    period = period_of(dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC), "day", "America/Los_Angeles")

    assert period.key == "2026-11-01"
    assert period.length == dt.timedelta(hours=25)
    assert period.end - period.start == dt.timedelta(hours=24)  # wall clock: why `length` exists


def test_run_rate_projection_and_range_from_the_last_seven_days() -> None:
    period = period_of(at(SHANGHAI, 2026, 11, 16), "month", SHANGHAI)  # exactly half of November gone

    outlook = forecast(120.0, period, at(SHANGHAI, 2026, 11, 16), [4.0, 6.0, 10.0, 2.0, 8.0, 6.0, 6.0])

    # 120 / 0.5; range 120 + 2 x 15 days left .. 120 + 10 x 15 days left
    assert outlook == Forecast(projected=240.0, low=150.0, high=270.0)


def test_the_range_always_holds_the_projection() -> None:
    period = period_of(at(SHANGHAI, 2026, 11, 16), "month", SHANGHAI)

    idle_week = forecast(50.0, period, at(SHANGHAI, 2026, 11, 16), [0.0] * 7)
    busy_week = forecast(50.0, period, at(SHANGHAI, 2026, 11, 16), [20.0] * 7)

    assert idle_week == Forecast(projected=100.0, low=50.0, high=100.0)
    assert busy_week == Forecast(projected=100.0, low=100.0, high=350.0)


def test_forecast_over_a_25_hour_day_and_at_the_period_start() -> None:
    day = period_of(dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC), "day", "America/Los_Angeles")
    five_hours_in = day.start.astimezone(dt.UTC) + dt.timedelta(hours=5)  # 5 of 25 hours

    assert forecast(10.0, day, five_hours_in, []) == Forecast(50.0, 50.0, 50.0)
    assert forecast(10.0, day, day.start, []) == Forecast(10.0, 10.0, 10.0)  # nothing elapsed: no division


def test_anomaly_is_above_mean_plus_three_standard_deviations() -> None:
    trailing = [10.0] * 7 + [14.0] * 7  # mean 12, population std 2: the limit is 18

    assert anomaly(18.0, trailing, 3.0, 5.0) is None  # at the limit is not above it
    found = anomaly(18.5, trailing, 3.0, 5.0)

    assert found == Anomaly(today=18.5, mean=12.0, std=2.0, limit=18.0)
    assert (
        found.describe(3.0, 14) == "US$18.50 today > US$18.00 = mean US$12.00 + 3 x std US$2.00 of the trailing 14 days"
    )


@pytest.mark.parametrize(
    ("today", "min_usd", "expected"),
    [
        (4.99, 5.0, None),  # a new agent's first few dollars page nobody
        (5.0, 5.0, Anomaly(today=5.0, mean=0.0, std=0.0, limit=0.0)),
        (19.0, 20.0, None),  # above the limit of 18 but under the minimum
    ],
)
def test_the_minimum_amount_keeps_small_agents_quiet(today: float, min_usd: float, expected: Anomaly | None) -> None:
    trailing = [0.0] * 14 if today <= 5.0 else [10.0] * 7 + [14.0] * 7

    assert anomaly(today, trailing, 3.0, min_usd) == expected


def test_no_baseline_means_no_anomaly() -> None:
    assert anomaly(1_000.0, [], 3.0, 5.0) is None
