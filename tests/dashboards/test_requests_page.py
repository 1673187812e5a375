"""Requests: the ledger's rows for the filters, newest first, paged, against DuckDB SQL; a row
opens its trace."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dashboards import nav
from dashboards.filters import local_today
from dashboards.ledger import PAGE_SIZE
from meterline.layout import DataLayout
from tests.dashboards.conftest import build_ledger, open_app, sql


def _ids(layout: DataLayout, where: str, offset: int = 0) -> list[str]:
    rows = sql(
        layout,
        f"SELECT request_id FROM usage WHERE {where} ORDER BY ts_start DESC, request_id DESC"
        f" LIMIT {PAGE_SIZE} OFFSET {offset}",
    )
    return [row[0] for row in rows]


def test_newest_first_paged_and_counted(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    build_ledger(layout)
    today = local_today("UTC")
    where = f"local_date BETWEEN '{today - dt.timedelta(days=29)}' AND '{today}'"
    count = sql(layout, f"SELECT count(*) FROM usage WHERE {where}")[0][0]

    app = open_app(layout, monkeypatch, "requests")

    assert list(app.dataframe[0].value["request_id"]) == _ids(layout, where)
    pages = -(-count // PAGE_SIZE)
    assert f"{count:,} requests, newest first; page 1 of {pages}." in app.caption[1].value

    app.button[0].click().run()  # Older

    assert app.query_params["page"] in ("2", ["2"])
    assert list(app.dataframe[0].value["request_id"]) == _ids(layout, where, PAGE_SIZE)


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ({"outcome": "refused"}, "status <> 'ok' AND http_status BETWEEN 400 AND 498"),
        ({"outcome": "failed"}, "status <> 'ok' AND NOT (http_status BETWEEN 400 AND 498)"),
        ({"min_cost": "0.004"}, "cost_usd >= 0.004"),
        ({"min_latency_ms": "800"}, "latency_ms >= 800"),
        ({"agent": "triage-bot", "model": "gpt-4o"}, "agent_id = 'triage-bot' AND model = 'gpt-4o'"),
        ({"tag": "cost_center:cc-102"}, "tags['cost_center'] = 'cc-102'"),
    ],
)
def test_filters_match_the_ledger(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch, query: dict[str, Any], where: str
) -> None:
    build_ledger(layout, days=10)
    today = local_today("UTC")
    where = f"{where} AND local_date BETWEEN '{today - dt.timedelta(days=29)}' AND '{today}'"

    app = open_app(layout, monkeypatch, "requests", **query)

    assert list(app.dataframe[0].value["request_id"]) == _ids(layout, where)
    assert not app.warning


def test_a_row_opens_its_trace(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    if not nav.has_traces():
        pytest.skip("dashboards/trace_page.py is not there yet")
    build_ledger(layout, days=2)

    app = open_app(layout, monkeypatch, "requests")

    table = app.dataframe[0].value
    first = table.iloc[0]
    assert first["trace"] == f"traces?trace_id={first['trace_id']}&request_id={first['request_id']}"
    link = app.get("page_link")[-1]
    assert link.proto.label == f"Open trace {first['trace_id']}"
    assert link.proto.page.endswith("traces")
