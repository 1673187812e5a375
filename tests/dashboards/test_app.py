from __future__ import annotations

import datetime as dt
import importlib
import json
import zoneinfo
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import run_once
from analytics.latency_daily import read_latency_daily
from analytics.spend_daily import SPEND_DAILY_COLUMNS
from dashboards.filters import BUDGETS_ENV, TIMEZONE_ENV, local_today, month_start
from dashboards.queries import format_usd
from meterline.layout import DataLayout
from meterline.usage_record import UsageRecord
from tests.ledger_fixtures import exact_usd, sample_records, write_ledger

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
SHANGHAI = "Asia/Shanghai"


def run_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    monkeypatch.setenv("METERLINE_DATA_DIR", str(data_dir))
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.run()
    assert not app.exception
    return app


def local_date(record: UsageRecord, timezone: str) -> dt.date:
    return record.ts_start.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def ledger(layout: DataLayout, timezone: str) -> list[UsageRecord]:
    """40 UTC days ending today (always past the 1st of the local month), marts in `timezone`."""
    records = sample_records(dt.datetime.now(dt.UTC).date(), days=40)
    write_ledger(layout, records)
    run_once(layout, timezone)
    return records


def test_metrics_show_exact_spend_today_and_month_to_date(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    records = ledger(layout, "UTC")
    today = local_today("UTC")

    app = run_app(layout.root, monkeypatch)

    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics == {
        "Spend today": format_usd(exact_usd(r for r in records if r.date == today)),
        "Month to date": format_usd(exact_usd(r for r in records if r.date >= today.replace(day=1))),
    }
    assert app.title[0].value == "Meterline: spend"
    assert app.date_input[0].value == (today - dt.timedelta(days=29), today)
    assert [tab.label for tab in app.tabs] == ["Daily spend", "Monthly spend", "Latency"]
    assert len(app.get("vega_lite_chart")) == 5  # 2 daily, 1 monthly, 2 latency
    table = app.dataframe[0].value
    assert list(table.columns) == list(SPEND_DAILY_COLUMNS)
    shown = [r for r in records if r.date > today - dt.timedelta(days=30)]
    assert len(table) == len({(r.date, r.agent_id, r.team, r.model or r.model_requested, r.provider) for r in shown})
    assert not app.info and not app.warning


def test_days_follow_the_configured_time_zone(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    records = ledger(layout, SHANGHAI)
    monkeypatch.setenv(TIMEZONE_ENV, SHANGHAI)
    today = local_today(SHANGHAI)

    app = run_app(layout.root, monkeypatch)

    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Spend today"] == format_usd(exact_usd(r for r in records if local_date(r, SHANGHAI) == today))
    month = [r for r in records if today.replace(day=1) <= local_date(r, SHANGHAI) <= today]
    assert metrics["Month to date"] == format_usd(exact_usd(month))
    assert app.date_input[0].label == f"Date range ({SHANGHAI})"
    assert app.caption[0].value == f"Scope: total. Days and months in {SHANGHAI}."


def test_an_alarm_link_opens_on_its_scope_budget_and_period(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = ledger(layout, SHANGHAI)
    monkeypatch.setenv(TIMEZONE_ENV, SHANGHAI)
    budget = {"name": "support-monthly", "scope": {"team": "support"}, "period": "month", "amount_usd": 20}
    monkeypatch.setenv(BUDGETS_ENV, json.dumps([budget]))
    today = local_today(SHANGHAI)
    first = today.replace(day=1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)

    app = run_app(
        layout.root, monkeypatch, scope="team:support", budget="support-monthly", period=first.strftime("%Y-%m")
    )

    in_period = [r for r in records if r.team == "support" and first <= local_date(r, SHANGHAI) <= last]
    spent = exact_usd(in_period)
    assert app.date_input[0].value == (first, last)
    assert app.caption[0].value == f"Scope: team:support. Days and months in {SHANGHAI}."
    label = f"Budget support-monthly ({first.isoformat()} to {last.isoformat()})"
    budget_metric = next(m for m in app.metric if m.label == label)
    assert budget_metric.value == f"{format_usd(spent)} of $20.000000"
    assert budget_metric.delta == f"{100 * spent / 20:.1f}%"
    daily, monthly = app.dataframe[0].value, app.dataframe[1].value
    assert set(daily["team"]) == set(monthly["team"]) == {"support"}
    assert daily["requests"].sum() == len(in_period)
    assert not app.warning


def test_unusable_link_parameters_are_reported_not_fatal(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger(layout, "UTC")

    app = run_app(layout.root, monkeypatch, scope="tenant:x", budget="nope", period="November")

    assert sorted(w.value.split(":")[1].strip().split(" ")[0] for w in app.warning) == ["budget", "period", "scope"]
    assert app.caption[0].value == "Scope: total. Days and months in UTC."
    assert len(app.dataframe) == 3


def test_latency_tab_shows_the_mart_for_the_range(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger(layout, "UTC")
    today = local_today("UTC")

    app = run_app(layout.root, monkeypatch)

    shown = pl.from_pandas(app.dataframe[2].value).with_columns(pl.col("date").cast(pl.Date))
    expected = read_latency_daily(layout, today - dt.timedelta(days=29), today).sort(
        ["date", "model"], descending=[True, False]
    )
    assert shown.rows() == expected.rows()
    assert app.radio[0].value == "p95"
    assert [s.value for s in app.subheader if "by model" in s.value][:2] == [
        "Latency p95 by model (ms)",
        "Time to first token p95 by model (ms, streams only)",
    ]
    app.radio[0].set_value("p99").run()
    assert "Latency p99 by model (ms)" in [s.value for s in app.subheader]


def test_a_range_without_spend_says_so(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger(layout, "UTC")
    app = run_app(layout.root, monkeypatch)
    today = local_today("UTC")
    since, until = today - dt.timedelta(days=90), today - dt.timedelta(days=80)

    app.date_input[0].set_value((since, until)).run()

    assert not app.exception
    assert [info.value for info in app.info] == [
        f"No spend between {since.isoformat()} and {until.isoformat()}.",
        f"No spend in the months {month_start(until, -11):%Y-%m} to {until:%Y-%m}.",
        "No latency figures for this range.",
    ]


def test_empty_data_dir_shows_the_empty_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_app(tmp_path / "nothing-yet", monkeypatch)

    assert len(app.info) == 1
    assert app.info[0].value.startswith("No spend recorded yet.")
    assert not app.metric
    assert not app.dataframe
    assert not app.markdown  # no stray string literal rendered by Streamlit's magic


def test_importing_the_page_renders_nothing() -> None:
    module = importlib.import_module("dashboards.app")

    assert callable(module.render_page)
