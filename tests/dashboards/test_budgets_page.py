"""Budgets and alarms: each budget's spend against DuckDB SQL over the ledger, and the alarms
read from the alarm state (fired, delivered, failed per channel)."""

from __future__ import annotations

import pytest

from alarms.message import Message
from alarms.state import AlarmState, state_file
from dashboards.filters import local_today
from meterline.layout import DataLayout
from tests.dashboards.conftest import build_ledger, open_app, sql, usd


def test_each_budget_and_its_alarms_per_channel(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    period = f"{today:%Y-%m}"
    state = AlarmState(state_file(layout))
    try:
        first = state.claim("support-monthly", period, "threshold:50", Message("50%", ["x"]), ["dingtalk", "slack"])
        second = state.claim("support-monthly", period, "forecast", Message("forecast", ["y"]), ["dingtalk", "slack"])
        assert first is not None and second is not None
        state.record(first, "dingtalk", None, 1)
        state.record(first, "slack", "HTTP 500", 3)
        state.record(second, "dingtalk", None, 1)
    finally:
        state.close()

    app = open_app(layout, monkeypatch, "budgets")

    budgets = app.dataframe[0].value
    spent = usd(
        sql(layout, f"SELECT sum(cost) FROM usage WHERE team = 'support' AND local_date >= '{today.replace(day=1)}'")[
            0
        ][0]
    )
    assert list(budgets["budget"]) == ["support-monthly"]
    assert list(budgets["period"]) == [period]
    assert list(budgets["spent_usd"]) == [spent]
    assert list(budgets["amount_usd"]) == [20.0]
    channels = app.dataframe[1].value
    assert [
        tuple(row) for row in channels[["channel", "fired", "delivered", "failed", "sending"]].itertuples(index=False)
    ] == [
        ("dingtalk", 2, 2, 0, 0),
        ("slack", 2, 0, 1, 1),
    ]
    assert len(app.dataframe[2].value) == 4  # every alarm x channel
    assert len(app.get("download_button")) == len(app.dataframe)


def test_no_budgets_says_so(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout, days=2)

    app = open_app(layout, monkeypatch, "budgets", budgets=[])

    assert [i.value for i in app.info] == ["No budgets configured (`budgets:` in meterline.yaml)."]
    assert not (state_file(layout)).exists()  # the page never creates the alarm state
