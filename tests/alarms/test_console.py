"""The console channel, and the embedded defaults' demo budget alarming into it."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

import pytest

from alarms.console import Console, line
from alarms.engine import AlarmEngine
from alarms.message import Message
from alarms.notifier import build_notifier
from alarms.rules import FORECAST_METHOD
from meterline.config import EMBEDDED_SOURCE, AlertChannel, ConfigError, parse_config
from meterline.defaults import DEFAULT_CONFIG_YAML, DEMO_BUDGET_USD
from meterline.layout import DataLayout
from tests.alarms.conftest import TZ, spend

DAY = dt.date(2026, 11, 20)
LATE = dt.datetime.combine(DAY, dt.time(23, 30), zoneinfo.ZoneInfo(TZ))
"""Late in the day, so 55 % spent projects below the budget: no forecast alarm beside the threshold."""


def test_the_defaults_budget_fires_one_alarm_into_the_console(
    layout: DataLayout, caplog: pytest.LogCaptureFixture
) -> None:
    defaults = parse_config(DEFAULT_CONFIG_YAML, EMBEDDED_SOURCE, environ={})
    [budget] = defaults.budgets
    assert (budget.scope, budget.period, budget.amount_usd, budget.channels) == (
        {"team": "support"},
        "day",
        DEMO_BUDGET_USD,
        ["console"],
    )
    assert defaults.alerts.channels["console"].type == "console"
    config = defaults.model_copy(update={"timezone": TZ})  # the time zone the ledger fixture writes in
    spend(layout, [(DAY, "support-bot", "gpt-4o-mini", 0.0007), (DAY, "support-bot", "gpt-4o-mini", 0.0004)])
    spend(layout, [(DAY, "research-agent", "gpt-4o-mini", 0.5)], team="research")  # another team's spend

    with caplog.at_level(logging.INFO, logger="alarms.console"):
        first = AlarmEngine(config, layout).run(LATE)
        second = AlarmEngine(config, layout).run(LATE)

    assert first.claimed == ["demo-support-daily/2026-11-20/threshold:50"]
    assert (first.sent, first.failed, second.claimed) == (1, 0, [])
    [record] = [r for r in caplog.records if r.name == "alarms.console"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "alarm (console): Budget demo-support-daily: 50% of US$0.0020 crossed"
        " | Budget: demo-support-daily (team:support, 2026-11-20)"
        " | Spent: US$0.0011 of US$0.0020 (55.0%)"
        f" | Forecast: US$0.0011 by the end of the period, range US$0.0011 to US$0.0011 ({FORECAST_METHOD})"
        " | Top agents: support-bot US$0.0011"
        " | Top models: gpt-4o-mini US$0.0011"
    )


def test_a_console_line_has_every_part_and_no_newline(caplog: pytest.LogCaptureFixture) -> None:
    message = Message("Budget b: 100% crossed", ["a\nb", "c"], "critical", "http://dash/?b=1")
    assert line("ops", message) == "alarm (ops): Budget b: 100% crossed | a b | c | http://dash/?b=1"
    with caplog.at_level(logging.INFO, logger="alarms.console"):
        build_notifier("ops", AlertChannel(type="console")).send(message)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.ERROR, line("ops", message))]
    assert isinstance(build_notifier("ops", AlertChannel(type="console")), Console)


def test_only_the_console_channel_goes_without_a_webhook() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("alerts: {channels: {chat: {type: slack}}}", "m.yaml", environ={})
    assert str(raised.value) == "m.yaml: alerts.channels.chat.webhook: a slack channel needs its webhook URL"
