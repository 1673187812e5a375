from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alarms.rules import forecast, period_of
from analytics.jobs import run_once
from dashboards import queries
from meterline.layout import DataLayout
from tests.ledger_fixtures import AGENTS, exact_usd, sample_records, write_ledger

TODAY = dt.date(2026, 11, 3)  # early in the month, so the 40-day ledger spans October too


def build(layout: DataLayout) -> None:
    write_ledger(layout, sample_records(TODAY, days=40))
    run_once(layout)


def test_totals_are_exact_for_today_and_month_to_date(layout: DataLayout) -> None:
    build(layout)
    records = sample_records(TODAY, days=40)

    totals = queries.spend_totals(layout, TODAY)

    assert totals.today_usd == exact_usd(r for r in records if r.date == TODAY)
    assert totals.month_to_date_usd == exact_usd(r for r in records if r.date >= dt.date(2026, 11, 1))
    assert totals.today_usd > 0
    assert totals.month_to_date_usd > totals.today_usd


def test_totals_without_data_are_zero(layout: DataLayout) -> None:
    assert queries.spend_totals(layout, TODAY) == queries.SpendTotals(today_usd=0.0, month_to_date_usd=0.0)
    assert not queries.has_data(layout)


def test_load_spend_is_inclusive_on_both_ends(layout: DataLayout) -> None:
    build(layout)
    since, until = dt.date(2026, 10, 30), dt.date(2026, 11, 2)

    daily = queries.load_spend(layout, since, until)

    assert daily["date"].min() == since
    assert daily["date"].max() == until
    assert queries.has_data(layout)


def test_spend_by_agent_sums_each_agent_most_expensive_first(layout: DataLayout) -> None:
    build(layout)
    since = TODAY - dt.timedelta(days=6)
    records = [r for r in sample_records(TODAY, days=40) if r.date >= since]

    by_agent = queries.spend_by_agent(queries.load_spend(layout, since, TODAY))

    expected = {agent: exact_usd(r for r in records if r.agent_id == agent) for agent, _ in AGENTS}
    assert dict(zip(by_agent["agent_id"], by_agent["cost_usd"], strict=True)) == expected
    assert by_agent["cost_usd"].to_list() == sorted(expected.values(), reverse=True)
    assert dict(zip(by_agent["agent_id"], by_agent["team"], strict=True)) == dict(AGENTS)
    assert by_agent["requests"].sum() == len(records)


def test_spend_by_day_pivots_agents_into_columns(layout: DataLayout) -> None:
    build(layout)
    since = TODAY - dt.timedelta(days=2)
    records = sample_records(TODAY, days=3)

    by_day = queries.spend_by_day(queries.load_spend(layout, since, TODAY))

    assert by_day.columns == ["date", *sorted(agent for agent, _ in AGENTS)]
    assert by_day["date"].to_list() == [since + dt.timedelta(days=n) for n in range(3)]
    for row in by_day.iter_rows(named=True):
        for agent, _ in AGENTS:
            assert row[agent] == exact_usd(r for r in records if r.date == row["date"] and r.agent_id == agent)


def test_spend_by_day_fills_days_an_agent_was_idle_with_zero() -> None:
    tomorrow = TODAY + dt.timedelta(days=1)
    daily = pl.DataFrame(
        {
            "date": [TODAY, TODAY, tomorrow],
            "agent_id": ["a", "b", "a"],
            "cost_usd": [1.5, 2.0, 0.25],
        }
    )

    by_day = queries.spend_by_day(daily)

    assert by_day.rows() == [(TODAY, 1.5, 2.0), (tomorrow, 0.25, 0.0)]


def test_empty_frames_stay_empty() -> None:
    daily = queries.load_spend(DataLayout.at("/nonexistent/meterline"), TODAY, TODAY)

    assert queries.spend_by_agent(daily).height == 0
    assert queries.spend_by_day(daily).columns == ["date"]


def test_format_usd() -> None:
    assert queries.format_usd(1234.5) == "$1,234.500000"
    assert queries.format_usd(0.00916545) == "$0.009165"
    assert queries.format_usd(0.0) == "$0.000000"


def test_the_forecast_is_the_alarms_run_rate_over_the_mart(layout: DataLayout) -> None:
    build(layout)
    records = sample_records(TODAY, days=40)
    now = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)
    month = period_of(now, "month", "UTC")
    first, last = queries.outlook_window(month, TODAY)

    found = queries.outlook(queries.load_spend(layout, first, last), month, now)

    spent = exact_usd(r for r in records if dt.date(2026, 11, 1) <= r.date <= TODAY)
    recent = [exact_usd(r for r in records if r.date == TODAY - dt.timedelta(days=k)) for k in range(1, 8)]
    expected = forecast(spent, month, now, recent)
    assert (found.spent, found.forecast, found.low, found.high) == (
        spent,
        expected.projected,
        expected.low,
        expected.high,
    )
    assert found.forecast == pytest.approx(spent / ((2.5) / 30))


def test_top_changes_leave_out_requests_no_model_answered(layout: DataLayout) -> None:
    build(layout)
    current = queries.load_spend(layout, TODAY - dt.timedelta(days=6), TODAY)
    previous = queries.load_spend(layout, TODAY - dt.timedelta(days=13), TODAY - dt.timedelta(days=7))

    top = queries.top_changes(current, previous, "model")

    answered = [r for r in sample_records(TODAY, days=40) if r.model is not None]
    now = {
        m: exact_usd(r for r in answered if r.model == m and r.date > TODAY - dt.timedelta(days=7))
        for m in top["model"]
    }
    assert dict(zip(top["model"], top["cost_usd"], strict=True)) == now
    assert top["change_usd"].to_list() == pytest.approx((top["cost_usd"] - top["previous_usd"]).to_list())
    assert top.height == 3  # three models; the failed requests' aliases are not a fourth


def test_burn_down_is_cumulative_with_the_budget_left(layout: DataLayout) -> None:
    build(layout)
    first = dt.date(2026, 11, 1)

    line = queries.burn_down(queries.load_spend(layout, first, TODAY), first, TODAY, 20.0)

    records = sample_records(TODAY, days=40)
    assert line["date"].to_list() == [first, dt.date(2026, 11, 2), TODAY]
    assert line["spent_usd"][-1] == pytest.approx(exact_usd(r for r in records if r.date >= first))
    assert (line["spent_usd"] + line["left_usd"]).to_list() == pytest.approx([20.0] * 3)
