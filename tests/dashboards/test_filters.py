from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from dashboards.filters import (
    Budget,
    Filters,
    budgets_env_value,
    budgets_from_env,
    filters_from_params,
    local_today,
    mart_rows,
    month_start,
    page_link,
    parse_day,
    parse_period,
    parse_scope,
    timezone_from_env,
    view_from_link,
)
from meterline.config import MeterlineConfig

BUDGETS = {"support-monthly": Budget("support-monthly", {"team": "support"}, "month", 1000.0, (50.0, 80.0, 100.0))}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("total", {}),
        ("", {}),
        ("team:support", {"team": "support"}),
        ("agent:support-bot,team:support", {"agent": "support-bot", "team": "support"}),
        ("model:gpt-4o", {"model": "gpt-4o"}),
    ],
)
def test_parse_scope_reads_the_alarm_scope_label(text: str, expected: dict[str, str]) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize("text", ["tenant:x", "team", "team:", "team:a,:b"])
def test_parse_scope_rejects_with_the_accepted_kinds(text: str) -> None:
    with pytest.raises(ValueError, match="agent, team, project, model"):
        parse_scope(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11", (dt.date(2026, 11, 1), dt.date(2026, 11, 30))),
        ("2026-12", (dt.date(2026, 12, 1), dt.date(2026, 12, 31))),
        ("2028-02", (dt.date(2028, 2, 1), dt.date(2028, 2, 29))),
        ("2026-11-14", (dt.date(2026, 11, 14), dt.date(2026, 11, 14))),
    ],
)
def test_parse_period_month_or_day(text: str, expected: tuple[dt.date, dt.date]) -> None:
    assert parse_period(text) == expected


def test_a_link_with_a_budget_takes_its_scope_and_an_explicit_scope_wins() -> None:
    view = view_from_link({"budget": "support-monthly", "period": "2026-11"}, BUDGETS)
    explicit = view_from_link({"budget": "support-monthly", "scope": "agent:triage-bot"}, BUDGETS)

    assert (view.scope, view.since, view.until, view.budget) == (
        {"team": "support"},
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
        BUDGETS["support-monthly"],
    )
    assert view.scope_label == "team:support" and view.problems == []
    assert explicit.scope == {"agent": "triage-bot"}


def test_bad_link_parameters_become_problems_not_errors() -> None:
    view = view_from_link({"scope": "tenant:x", "budget": "nope", "period": "Nov"}, BUDGETS)

    assert (view.scope, view.since, view.budget) == ({}, None, None)
    assert len(view.problems) == 3


def test_time_zone_from_env_falls_back_to_utc() -> None:
    assert timezone_from_env({"METERLINE_TIMEZONE": "Asia/Shanghai"}) == "Asia/Shanghai"
    assert timezone_from_env({"METERLINE_TIMEZONE": "Mars/Olympus"}) == "UTC"
    assert timezone_from_env({}) == "UTC"


def test_local_today_in_shanghai_is_tomorrow_late_in_the_utc_evening() -> None:
    late = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)

    assert local_today("Asia/Shanghai", late) == dt.date(2026, 12, 1)
    assert local_today("UTC", late) == dt.date(2026, 11, 30)


def test_month_start_moves_by_whole_months() -> None:
    assert month_start(dt.date(2026, 9, 30), -11) == dt.date(2025, 10, 1)
    assert month_start(dt.date(2026, 1, 15), -1) == dt.date(2025, 12, 1)
    assert month_start(dt.date(2026, 12, 31)) == dt.date(2026, 12, 1)


def test_budgets_reach_the_page_without_channels_or_secrets() -> None:
    config = MeterlineConfig.model_validate(
        {
            "budgets": [
                {
                    "name": "support-monthly",
                    "scope": {"team": "support"},
                    "period": "month",
                    "amount_usd": 1000,
                    "channels": ["oncall"],
                }
            ],
            "alerts": {
                "channels": {
                    "oncall": {
                        "type": "dingtalk",
                        "webhook": "https://oapi.dingtalk.com/robot/send?access_token=tok-SECRET-123",
                        "secret": "SECsecretsecret",
                    }
                }
            },
        }
    )

    value = budgets_env_value([b.model_dump() for b in config.budgets])

    assert json.loads(value) == [
        {
            "name": "support-monthly",
            "scope": {"team": "support"},
            "period": "month",
            "amount_usd": 1000.0,
            "thresholds": [50.0, 80.0, 100.0],
        }
    ]
    assert "SECRET" not in value and "secret" not in value.lower() and "oncall" not in value
    assert budgets_from_env({"METERLINE_BUDGETS": value}) == BUDGETS
    assert budgets_from_env({"METERLINE_BUDGETS": "not json"}) == {}


TODAY = dt.date(2026, 11, 14)


def test_the_url_filters_round_trip() -> None:
    params = {"since": "2026-11-01", "until": "2026-11-10", "team": "support", "agent": "a", "model": "gpt-4o",
              "tag": "cost_center:cc-102"}  # fmt: skip
    found = filters_from_params(params, BUDGETS, TODAY)

    assert (found.since, found.until, found.team, found.agent, found.model, found.tag) == (
        dt.date(2026, 11, 1), dt.date(2026, 11, 10), "support", "a", "gpt-4o", ("cost_center", "cc-102")
    )  # fmt: skip
    assert found.params() == params
    assert found.problems == ()
    link = page_link("requests", found, outcome="refused", page=None)
    assert link == (
        "requests?since=2026-11-01&until=2026-11-10&team=support&agent=a&model=gpt-4o"
        "&tag=cost_center%3Acc-102&outcome=refused"
    )


def test_an_alarm_link_becomes_the_sidebar_filters() -> None:
    found = filters_from_params(
        {"scope": "team:support", "budget": "support-monthly", "period": "2026-11"}, BUDGETS, TODAY
    )

    assert found.params() == {
        "since": "2026-11-01",
        "until": "2026-11-30",
        "team": "support",
        "budget": "support-monthly",
    }


def test_defaults_and_problems() -> None:
    found = filters_from_params({"since": "yesterday", "tag": "nokey", "until": "2026-10-01"}, BUDGETS, TODAY)

    assert (found.since, found.until) == (TODAY - dt.timedelta(days=29), TODAY)
    assert [p.split(" ")[0] for p in found.problems] == ["since", "since", "tag"]
    assert filters_from_params({}, {}, TODAY).params() == {"since": "2026-10-16", "until": "2026-11-14"}


def test_a_time_ago_is_a_day() -> None:
    assert parse_day("24h", TODAY) == dt.date(2026, 11, 13)
    assert parse_day("1h", TODAY) == TODAY
    assert parse_day("7d", TODAY) == dt.date(2026, 11, 7)
    with pytest.raises(ValueError):
        parse_day("soon", TODAY)


def test_mart_rows_never_match_a_model_no_provider_answered() -> None:
    frame = pl.DataFrame(
        {"team": ["t", "t"], "agent_id": ["a", "a"], "model": ["claude-nope", "gpt-4o"], "provider": [None, "openai"]}
    )
    assert mart_rows(frame, Filters(TODAY, TODAY, model="claude-nope")).height == 0
    assert mart_rows(frame, Filters(TODAY, TODAY, model="gpt-4o")).height == 1
