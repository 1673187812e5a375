"""Alarm runs against local DingTalk and Slack receivers: once per threshold, resolve on a new
period, once across concurrent runs, a failing channel retried and recorded."""

from __future__ import annotations

import datetime as dt
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from alarms.engine import AlarmEngine
from alarms.state import AlarmState, state_file
from meterline.config import MeterlineConfig
from meterline.layout import DataLayout
from tests.alarms.conftest import TZ, spend
from tests.alarms.receivers import Receiver, serve

NOV = [dt.date(2026, 11, d) for d in range(1, 31)]
LATE_NOV = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # 23:00 on 30 Nov in Shanghai
EARLY_DEC = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)  # 01:00 on 1 Dec in Shanghai
SECRET = "SEC0123456789abcdef"


def config(dingtalk: str, slack: str, **budget: Any) -> MeterlineConfig:
    return MeterlineConfig.model_validate(
        {
            "timezone": TZ,
            "budgets": [
                {
                    "name": "support-monthly",
                    "scope": {"team": "support"},
                    "period": "month",
                    "amount_usd": 100,
                    "channels": ["oncall-dingtalk", "finance-slack"],
                    **budget,
                }
            ],
            "alerts": {
                "dashboard_url": "https://meterline.example.com",
                "channels": {
                    "oncall-dingtalk": {"type": "dingtalk", "webhook": dingtalk, "secret": "os.environ/DT_SECRET"},
                    "finance-slack": {"type": "slack", "webhook": "os.environ/SLACK_URL"},
                },
            },
        }
    )


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, Receiver]]:
    with ExitStack() as stack:
        ding = stack.enter_context(serve(Receiver("dingtalk", secret=SECRET)))
        slack = stack.enter_context(serve(Receiver("slack")))
        monkeypatch.setenv("DT_SECRET", SECRET)
        monkeypatch.setenv("SLACK_URL", slack.url)
        yield ding, slack


def steady_november(layout: DataLayout) -> None:
    """US$2.75 a day all month from one agent: 82.5 % of US$100, no forecast overrun, no anomaly."""
    spend(
        layout,
        [(day, "support-bot", "gpt-4o", 2.0) for day in NOV]
        + [(day, "triage-bot", "gpt-4o-mini", 0.75) for day in NOV],
    )


def test_crossing_50_and_80_sends_two_messages_per_channel_once(
    layout: DataLayout, receivers: tuple[Receiver, Receiver]
) -> None:
    ding, slack = receivers
    steady_november(layout)
    engine = AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0)

    first = engine.run(LATE_NOV)
    second = engine.run(LATE_NOV)

    assert first.claimed == ["support-monthly/2026-11/threshold:50", "support-monthly/2026-11/threshold:80"]
    assert (first.sent, first.failed) == (4, 0)
    assert (second.claimed, second.sent) == ([], 0)
    assert ding.rejected == []
    assert [m["msgtype"] for m in ding.received] == ["markdown", "markdown"]
    assert set(ding.received[0]["markdown"]) == {"title", "text"}
    text = ding.received[1]["markdown"]["text"]
    assert "80% of US$100.00 crossed (escalated from 50%)" in ding.received[1]["markdown"]["title"]
    assert "Spent: US$82.50 of US$100.00 (82.5%)" in text
    assert "Top agents: support-bot US$60.00, triage-bot US$22.50" in text
    assert "Top models: gpt-4o US$60.00, gpt-4o-mini US$22.50" in text
    assert "Forecast: US$82.61 by the end of the period" in text and "run rate" in text
    query = {"scope": "team:support", "budget": "support-monthly", "period": "2026-11"}
    link = "https://meterline.example.com/?" + urllib.parse.urlencode(query)
    assert f"[Open the dashboard]({link})" in text
    assert len(slack.received) == 2
    for message in slack.received:
        assert set(message) == {"blocks", "text"}
        assert [b["type"] for b in message["blocks"]] == ["header", "section", "section"]
        assert message["blocks"][2]["text"]["text"] == f"<{link}|Open the dashboard>"
    assert "82.5%" in slack.received[1]["text"]


def test_a_new_period_sends_the_resolve_once(layout: DataLayout, receivers: tuple[Receiver, Receiver]) -> None:
    ding, slack = receivers
    steady_november(layout)
    engine = AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0)
    engine.run(LATE_NOV)

    december = engine.run(EARLY_DEC)
    again = engine.run(EARLY_DEC)

    assert december.claimed == ["support-monthly/2026-11/resolved"]
    assert again.claimed == []
    assert len(ding.received) == len(slack.received) == 3
    assert ding.received[2]["markdown"]["title"] == "Resolved: budget support-monthly, 2026-11"
    assert "period=2026-11" in slack.received[2]["blocks"][2]["text"]["text"]


def test_state_survives_a_restart(layout: DataLayout, receivers: tuple[Receiver, Receiver]) -> None:
    ding, slack = receivers
    steady_november(layout)
    AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0).run(LATE_NOV)

    later = AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0).run(LATE_NOV)

    assert later.claimed == [] and len(ding.received) == 2


def test_two_runs_at_once_send_each_alarm_once(layout: DataLayout, receivers: tuple[Receiver, Receiver]) -> None:
    ding, slack = receivers
    steady_november(layout)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()  # all four open the new alarm-state file at once (alarms/state.py retries the WAL switch)
        try:
            AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0).run(LATE_NOV)
        except BaseException as exc:  # noqa: BLE001 - the test reports it instead of a thread dying quietly
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert [t.is_alive() for t in threads] == [False] * 4
    assert len(ding.received) == len(slack.received) == 2
    assert sorted(m["markdown"]["title"][:30] for m in ding.received) == sorted(
        {m["markdown"]["title"][:30] for m in ding.received}
    )


def test_a_failing_channel_is_retried_recorded_and_blocks_nothing(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(Receiver("dingtalk", secret=SECRET, fail_first=100)) as ding, serve(Receiver("slack")) as slack:
        monkeypatch.setenv("DT_SECRET", SECRET)
        monkeypatch.setenv("SLACK_URL", slack.url)
        steady_november(layout)
        waits: list[float] = []
        engine = AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0.5, sleep=waits.append)

        report = engine.run(LATE_NOV)

        assert (report.sent, report.failed) == (2, 2)
        assert len(slack.received) == 2 and ding.received == []
        assert ding.hits == 6  # 3 tries for each of the two messages
        assert waits == [0.5, 1.0, 0.5, 1.0]
        state = AlarmState(state_file(layout))
        failed = [d for d in state.deliveries() if d.status == "failed"]
        assert [(d.channel, d.attempts, d.last_error) for d in failed] == [("oncall-dingtalk", 3, "HTTP 500")] * 2

        ding.fail_first = 0  # the robot is back: the next run delivers what failed, nothing twice
        retry = engine.run(LATE_NOV)

        assert (retry.claimed, retry.sent, retry.failed) == ([], 2, 0)
        assert len(ding.received) == 2 and len(slack.received) == 2
        assert {d.status for d in state.deliveries()} == {"sent"}
        state.close()


def test_a_wrong_dingtalk_secret_is_refused_and_recorded(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(Receiver("dingtalk", secret=SECRET)) as ding, serve(Receiver("slack")) as slack:
        monkeypatch.setenv("DT_SECRET", "not-the-secret")
        monkeypatch.setenv("SLACK_URL", slack.url)
        steady_november(layout)

        report = AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0).run(LATE_NOV)

    assert (report.sent, report.failed) == (2, 2)
    assert len(ding.rejected) == 2  # terminal: not retried within the run
    state = AlarmState(state_file(layout))
    assert {d.last_error for d in state.deliveries() if d.status == "failed"} == {"errcode 310000: sign not match"}
    state.close()


def test_forecast_and_anomaly_alarms(layout: DataLayout, receivers: tuple[Receiver, Receiver]) -> None:
    ding, slack = receivers
    days = [dt.date(2026, 11, d) for d in range(1, 15)]
    spend(layout, [(day, "support-bot", "gpt-4o", 1.0 + (day.day % 2)) for day in days])  # US$1/US$2 alternating
    spend(layout, [(dt.date(2026, 11, 15), "support-bot", "gpt-4o", 40.0)])  # 15 Nov: far above
    now = dt.datetime(2026, 11, 15, 4, 0, tzinfo=dt.UTC)  # noon in Shanghai, 14.5 of 30 days gone

    report = AlarmEngine(config(ding.url, slack.url), layout, backoff_seconds=0).run(now)

    assert report.claimed == [
        "support-monthly/2026-11/threshold:50",
        "support-monthly/2026-11/forecast",
        "support-monthly/2026-11/anomaly:support-bot:2026-11-15",
    ]
    forecast = ding.received[1]["markdown"]
    assert forecast["title"] == "Budget support-monthly: projected US$126.21 of US$100.00"  # 61 / (14.5 / 30)
    anomaly = ding.received[2]["markdown"]["text"]
    assert "US$40.00 today > US$3.00 = mean US$1.50 + 3 x std US$0.50 of the trailing 14 days" in anomaly


def test_a_small_budget_shows_money_with_its_currency_and_enough_digits_to_be_non_zero(
    layout: DataLayout, receivers: tuple[Receiver, Receiver]
) -> None:
    ding, slack = receivers
    spend(layout, [(dt.date(2026, 11, 30), "support-bot", "demo", 0.00258)])
    engine = AlarmEngine(config(ding.url, slack.url, amount_usd=0.004, thresholds=[50]), layout, backoff_seconds=0)

    engine.run(LATE_NOV)

    text = ding.received[0]["markdown"]["text"]
    assert ding.received[0]["markdown"]["title"].startswith("Budget support-monthly: 50% of US$0.0040 crossed")
    assert "Spent: US$0.0026 of US$0.0040 (64.5%)" in text  # was "Spent: $0.00 of $0.00 (64.5%)"
    assert "Top agents: support-bot US$0.0026" in text
