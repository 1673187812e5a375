from __future__ import annotations

import datetime as dt

import polars as pl

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
