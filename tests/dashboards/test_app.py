from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import run_once
from analytics.spend_daily import SPEND_DAILY_COLUMNS
from dashboards.queries import format_usd, utc_today
from meterline.layout import DataLayout
from tests.ledger_fixtures import exact_usd, sample_records, write_ledger

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def run_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("METERLINE_DATA_DIR", str(data_dir))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    return app


def test_metrics_show_exact_spend_today_and_month_to_date(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    # Dates relative to the real UTC today, which is what the page uses; 40 days always
    # reaches back past the 1st of the month.
    today = utc_today()
    records = sample_records(today, days=40)
    write_ledger(layout, records)
    run_once(layout)

    app = run_app(layout.root, monkeypatch)

    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics == {
        "Spend today": format_usd(exact_usd(r for r in records if r.date == today)),
        "Month to date": format_usd(exact_usd(r for r in records if r.date >= today.replace(day=1))),
    }
    assert app.title[0].value == "Meterline: spend"
    assert app.date_input[0].value == (today - dt.timedelta(days=29), today)
    assert len(app.get("vega_lite_chart")) == 2
    table = app.dataframe[0].value
    assert list(table.columns) == list(SPEND_DAILY_COLUMNS)
    shown = [r for r in records if r.date > today - dt.timedelta(days=30)]
    assert len(table) == len({(r.date, r.agent_id, r.team, r.model or r.model_requested, r.provider) for r in shown})
    assert not app.info


def test_a_range_without_spend_says_so(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    today = utc_today()
    write_ledger(layout, sample_records(today, days=2))
    run_once(layout)
    app = run_app(layout.root, monkeypatch)

    since, until = today - dt.timedelta(days=90), today - dt.timedelta(days=80)

    app.date_input[0].set_value((since, until)).run()

    assert not app.exception
    assert [info.value for info in app.info] == [f"No spend between {since.isoformat()} and {until.isoformat()}."]
    assert not app.get("vega_lite_chart")


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
