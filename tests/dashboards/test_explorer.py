"""The Spend explorer: every dimension's numbers against DuckDB SQL over the ledger, refusals
and failures counted apart from models, hourly grain, CSV on every table, links to requests."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.filters import local_today
from dashboards.queries import format_usd
from meterline.layout import DataLayout
from tests.dashboards.conftest import build_ledger, metrics, open_app, sql, usd
from tests.ledger_fixtures import exact_usd, write_ledger

OUTCOME = "CASE WHEN status = 'ok' THEN 'ok' WHEN http_status BETWEEN 400 AND 498 THEN 'refused' ELSE 'failed' END"


@pytest.mark.parametrize(
    ("by", "key"),
    [
        ("agent", "agent_id"),
        ("team", "team"),
        ("project", "coalesce(project, '(none)')"),
        ("model", f"coalesce(model, '(' || {OUTCOME} || ')')"),
        ("provider", f"CASE WHEN model IS NULL THEN '(' || {OUTCOME} || ')' ELSE provider END"),
        ("tag", "coalesce(tags['cost_center'], '(none)')"),
    ],
)
def test_each_dimension_equals_the_ledger(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch, by: str, key: str
) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    since = today - dt.timedelta(days=29)

    app = open_app(layout, monkeypatch, "explorer", by=by)

    label = "tag:cost_center" if by == "tag" else by
    shown = app.dataframe[0].value
    expected = sql(
        layout,
        f"SELECT {key} AS k, count(*), count(*) FILTER ({OUTCOME} = 'refused'), count(*) FILTER ({OUTCOME} = 'failed'),"
        " sum(input_tokens), sum(output_tokens), sum(cache_read_input_tokens), sum(cost)"
        f" FROM usage WHERE local_date BETWEEN '{since}' AND '{today}' GROUP BY k ORDER BY sum(cost) DESC, k",
    )
    assert list(shown[label]) == [row[0] for row in expected]
    assert list(shown["requests"]) == [row[1] for row in expected]
    assert list(shown["refused"]) == [row[2] for row in expected]
    assert list(shown["failed"]) == [row[3] for row in expected]
    assert list(shown["input_tokens"]) == [row[4] for row in expected]
    assert list(shown["output_tokens"]) == [row[5] for row in expected]
    assert list(shown["cached_tokens"]) == [row[6] for row in expected]
    assert list(shown["cost_usd"]) == [usd(row[7]) for row in expected]
    assert list(shown["error_rate"]) == pytest.approx([row[3] / row[1] for row in expected])
    assert list(shown["refusal_rate"]) == pytest.approx([row[2] / row[1] for row in expected])
    if by == "model":
        assert "claude-nope" not in set(shown["model"])
        assert {"(refused)", "(failed)"} <= set(shown["model"])
    # Every table downloads as CSV.
    assert len(app.get("download_button")) == len(app.dataframe)


def test_the_totals_equal_the_ledger(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    since = today - dt.timedelta(days=29)

    app = open_app(layout, monkeypatch, "explorer")

    (requests, refused, failed, cost, saved, tokens_in, tokens_out) = sql(
        layout,
        f"SELECT count(*), count(*) FILTER ({OUTCOME} = 'refused'), count(*) FILTER ({OUTCOME} = 'failed'),"
        " sum(cost), sum(CAST(cost_saved_usd AS DECIMAL(38, 12))), sum(input_tokens), sum(output_tokens)"
        f" FROM usage WHERE local_date BETWEEN '{since}' AND '{today}'",
    )[0]
    shown = metrics(app)
    assert shown["Spend"] == format_usd(usd(cost))
    assert shown["Requests"] == f"{requests:,}"
    assert shown["Error rate"] == f"{100 * failed / requests:.1f}%"
    assert shown["Refusal rate"] == f"{100 * refused / requests:.1f}%"
    assert shown["Cache savings"] == format_usd(usd(saved))
    assert shown["Cost per request"] == format_usd(usd(cost) / requests)
    assert shown["Input tokens"] == f"{tokens_in:,}"
    assert shown["Output tokens"] == f"{tokens_out:,}"
    assert refused == 3


def test_hourly_for_recent_days(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout, days=3)
    today = local_today("UTC")
    since = today - dt.timedelta(days=1)

    app = open_app(layout, monkeypatch, "explorer", since=since.isoformat(), grain="hour")

    assert app.radio[1].options == ["day", "hour"] and app.radio[1].value == "hour"
    series = app.dataframe[1].value
    expected = sql(
        layout,
        "SELECT date_trunc('hour', CAST(ts_start AS TIMESTAMP)) AS h, count(*), sum(cost) FROM usage"
        f" WHERE local_date BETWEEN '{since}' AND '{today}' GROUP BY h ORDER BY h",
    )
    assert [t.to_pydatetime() for t in series["time"]] == [row[0] for row in expected]
    assert list(series["requests"]) == [row[1] for row in expected]
    assert list(series["cost_usd"]) == [usd(row[2]) for row in expected]


def test_a_long_range_is_daily_only(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout, days=10)

    app = open_app(layout, monkeypatch, "explorer", grain="hour")

    assert app.radio[1].options == ["day"]


def test_each_row_opens_its_requests(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout, days=3)
    today = local_today("UTC")
    since = today - dt.timedelta(days=29)

    app = open_app(layout, monkeypatch, "explorer", by="model")

    shown = app.dataframe[0].value
    links = dict(zip(shown["model"], shown["requests_link"], strict=True))
    base = {"since": since.isoformat(), "until": today.isoformat()}
    assert _params(links["gpt-4o"]) == {**base, "model": "gpt-4o"}
    assert _params(links["(refused)"]) == {**base, "outcome": "refused"}
    assert all(link.startswith("requests?") for link in links.values())


def test_errors_and_refusals_tab(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout, days=2)

    app = open_app(layout, monkeypatch, "explorer")

    problems = next(d.value for d in app.dataframe if "error_type" in d.value.columns)
    counted = {(o, s, e, m): n for o, s, e, m, n in problems.itertuples(index=False)}
    expected = sql(
        layout,
        f"SELECT {OUTCOME}, http_status, error_type, model_requested, count(*) FROM usage"
        " WHERE status <> 'ok' GROUP BY ALL",
    )
    assert counted == {(o, s, e, m): n for o, s, e, m, n in expected}


def _params(link: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))


def _specs(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]


def test_the_issue_findings_stay_fixed(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    """Axis labels the right way round, one day of latency still drawn, dates as dates, money
    before the long ids (never the column cut off at the right edge)."""
    build_ledger(layout, days=1)

    app = open_app(layout, monkeypatch, "explorer")

    specs = _specs(app)
    bars = next(s for s in specs if s.get("mark", {}).get("type") == "bar" and s["encoding"]["y"]["type"] == "nominal")
    assert bars["encoding"]["x"]["field"] == "cost_usd" and bars["encoding"]["x"]["title"].startswith("spend (USD)")
    assert bars["encoding"]["y"]["field"] == "agent" and bars["encoding"]["y"]["title"] == "agent"
    latency = [s for s in specs if s["encoding"].get("y", {}).get("title") == "ms"]
    assert len(latency) == 2 and all(s["mark"]["point"] is True for s in latency)  # one day: a point, not nothing
    daily = app.dataframe[1]
    assert daily.value.columns[0] == "time"
    config = json.loads(daily.proto.columns)
    assert config["time"]["type_config"]["format"] == "YYYY-MM-DD"
    by_agent = list(app.dataframe[0].value.columns)
    assert by_agent[:2] == ["agent", "cost_usd"]


def test_requests_show_money_before_ids(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout, days=1)

    app = open_app(layout, monkeypatch, "requests")

    columns = [c for c in app.dataframe[0].value.columns if c != "trace"]
    assert columns.index("cost_usd") < 5 < columns.index("request_id")
    assert json.loads(app.dataframe[0].proto.columns)["cost_usd"]["type_config"]["format"] == "$%.6f"


def test_a_request_seen_twice_while_compaction_swaps_files_counts_once(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = build_ledger(layout, days=2)
    today = local_today("UTC")
    write_ledger(layout, [r for r in records if r.date == today])  # the same rows in a second part

    app = open_app(layout, monkeypatch, "explorer", since=(today - dt.timedelta(days=1)).isoformat())

    shown = metrics(app)
    assert shown["Requests"] == f"{len(records):,}"
    assert shown["Spend"] == format_usd(exact_usd(records))
