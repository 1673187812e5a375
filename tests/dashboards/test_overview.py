"""The Overview page, every number checked against DuckDB SQL over the ledger's Parquet."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest

from alarms.rules import period_of
from dashboards.data import DATA_DIR_ENV
from dashboards.filters import local_today
from dashboards.queries import format_usd, load_spend, outlook
from meterline.layout import DataLayout
from tests.dashboards.conftest import build_ledger, metrics, open_app, sql, usd

SHANGHAI = "Asia/Shanghai"


def _spent(layout: DataLayout, where: str, timezone: str = "UTC") -> float:
    return usd(sql(layout, f"SELECT sum(cost) FROM usage WHERE {where}", timezone)[0][0])


def test_today_month_to_date_and_range_equal_the_ledger_to_the_cent(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    first = today.replace(day=1)
    since = today - dt.timedelta(days=29)
    before = dt.datetime.now(dt.UTC)

    app = open_app(layout, monkeypatch)

    after = dt.datetime.now(dt.UTC)
    shown = metrics(app)
    assert shown[f"Spend today ({today.isoformat()})"] == format_usd(_spent(layout, f"local_date = '{today}'"))
    assert shown[f"Month to date ({first:%Y-%m})"] == format_usd(_spent(layout, f"local_date >= '{first}'"))
    in_range = _spent(layout, f"local_date BETWEEN '{since}' AND '{today}'")
    assert shown[f"Spend in range ({since.isoformat()} to {today.isoformat()})"] == format_usd(in_range)
    support = _spent(layout, f"team = 'support' AND local_date >= '{first}'")
    budget = next(m for m in app.metric if m.label.startswith("support-monthly"))
    assert budget.label == f"support-monthly (team:support, {first:%Y-%m})"
    assert budget.value == f"{format_usd(support)} of $20.000000"
    assert budget.delta == f"{100 * support / 20:.1f}%"
    # The forecast is the alarms' run rate at the moment the page ran: between its values at
    # the instants just before and just after.
    month = period_of(before, "month", "UTC")
    rows = load_spend(layout, first - dt.timedelta(days=8), today)
    low, high = sorted(outlook(rows, month, t).forecast for t in (before, after))
    forecast = float(shown[f"Forecast for {first:%Y-%m}"].strip("$").replace(",", ""))
    assert round(low, 6) <= forecast <= round(high, 6)
    assert [t.value for t in app.title] == ["Overview"]
    assert not app.warning


def test_top_agents_teams_models_and_projects_with_their_change(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    since, until = today - dt.timedelta(days=6), today
    before = (since - dt.timedelta(days=7), since - dt.timedelta(days=1))

    app = open_app(layout, monkeypatch, since=since.isoformat(), until=until.isoformat())

    tables = {d.value.columns[0]: d.value for d in app.dataframe}
    assert set(tables) == {"agent", "team", "model", "project"}
    for name, column in (("agent", "agent_id"), ("team", "team"), ("model", "model")):
        expected = sql(
            layout,
            f"SELECT {column}, sum(cost) AS c FROM usage WHERE local_date BETWEEN '{since}' AND '{until}'"
            f" AND model IS NOT NULL GROUP BY 1 ORDER BY c DESC, 1 LIMIT 5",
        )
        previous = {
            row[0]: row[1]
            for row in sql(
                layout,
                f"SELECT {column}, sum(cost) FROM usage WHERE local_date BETWEEN '{before[0]}' AND '{before[1]}'"
                " AND model IS NOT NULL GROUP BY 1",
            )
        }
        shown = tables[name]
        assert list(shown[name]) == [row[0] for row in expected]
        assert list(shown["cost_usd"]) == [usd(row[1]) for row in expected]
        assert list(shown["previous_usd"]) == [usd(previous.get(row[0])) for row in expected]
        assert list(shown["change_usd"]) == pytest.approx([usd(r[1]) - usd(previous.get(r[0])) for r in expected])
    first_agent = tables["agent"].iloc[0]
    assert first_agent["requests"] == (
        f"requests?since={since.isoformat()}&until={until.isoformat()}&agent={first_agent['agent']}"
    )
    # Requests no model answered are not a model (they asked for `claude-nope` and got a 429).
    assert "claude-nope" not in set(tables["model"]["model"])
    assert len(app.get("download_button")) == len(app.dataframe)


def test_days_follow_the_configured_time_zone(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout, SHANGHAI)
    today = local_today(SHANGHAI)

    app = open_app(layout, monkeypatch, timezone=SHANGHAI)

    shown = metrics(app)
    assert shown[f"Spend today ({today.isoformat()})"] == format_usd(
        _spent(layout, f"local_date = '{today}'", SHANGHAI)
    )
    first = today.replace(day=1)
    assert shown[f"Month to date ({first:%Y-%m})"] == format_usd(_spent(layout, f"local_date >= '{first}'", SHANGHAI))
    assert app.sidebar.date_input[0].label == f"Date range ({SHANGHAI})"
    assert f"days in {SHANGHAI}" in app.caption[0].value


def test_an_alarm_link_opens_on_its_scope_and_period_and_the_url_keeps_them(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    first = today.replace(day=1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)

    app = open_app(layout, monkeypatch, scope="team:support", budget="support-monthly", period=f"{first:%Y-%m}")

    assert app.sidebar.date_input[0].value == (first, last)
    assert app.sidebar.selectbox[0].value == "support"
    assert {key: app.query_params[key] for key in app.query_params} == {
        "since": first.isoformat(),
        "until": last.isoformat(),
        "team": "support",
        "budget": "support-monthly",
    }
    label = f"Spend in range ({first.isoformat()} to {last.isoformat()})"
    assert metrics(app)[label] == format_usd(
        _spent(layout, f"team = 'support' AND local_date BETWEEN '{first}' AND '{last}'")
    )


def test_a_filter_change_is_written_to_the_url_and_changes_the_numbers(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    since = today - dt.timedelta(days=29)
    app = open_app(layout, monkeypatch)

    app.sidebar.selectbox[1].set_value("research-agent").run()

    assert app.query_params["agent"] in ("research-agent", ["research-agent"])
    label = f"Spend in range ({since.isoformat()} to {today.isoformat()})"
    where = f"agent_id = 'research-agent' AND local_date BETWEEN '{since}' AND '{today}'"
    assert metrics(app)[label] == format_usd(_spent(layout, where))


def test_a_tag_filter_reads_the_ledger(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    since = today - dt.timedelta(days=29)

    app = open_app(layout, monkeypatch, tag="cost_center:cc-101")

    label = f"Spend in range ({since.isoformat()} to {today.isoformat()})"
    where = f"tags['cost_center'] = 'cc-101' AND local_date BETWEEN '{since}' AND '{today}'"
    assert metrics(app)[label] == format_usd(_spent(layout, where))


def test_unusable_link_parameters_are_reported_not_fatal(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout)

    app = open_app(layout, monkeypatch, scope="tenant:x", budget="nope", period="November", since="yesterday")

    problems = sorted(w.value.split(":")[1].strip().split(" ")[0] for w in app.warning)
    assert problems == ["budget", "period", "scope", "since"]
    assert app.title[0].value == "Overview"


def test_an_empty_data_dir_shows_zeros_and_no_error(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_app(layout, monkeypatch, budgets=[])

    assert metrics(app)[f"Spend today ({local_today('UTC').isoformat()})"] == "$0.000000"
    assert [i.value for i in app.info] == ["No budgets configured (`budgets:` in meterline.yaml)."]
    assert not app.markdown or all(m.value.startswith("**Top") for m in app.markdown)


def test_importing_the_pages_renders_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    for name in ("dashboards.app", "dashboards.views.overview", "dashboards.views.explorer",
                 "dashboards.views.budgets", "dashboards.views.requests"):  # fmt: skip
        module = importlib.import_module(name)
        assert callable(getattr(module, "render_page", None) or module.render)
