"""The Traces page (dashboards/trace_page.py) through Streamlit's AppTest, over a ledger a real
collector wrote with the agent's own spans and the gateway's in one trace (tests/trace_ledger.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Selectbox

from dashboards.trace_page import search_from_params
from tests.aws import moto_url, s3_bucket
from tests.trace_ledger import (
    AGENT_KEY,
    PROVIDER_KEY,
    REQUEST_A,
    REQUEST_B,
    TRACE_A,
    TRACE_B,
    TRACE_C,
    TRACE_D,
    TraceLedger,
    build_trace_ledger,
)

__all__ = ["moto_url"]  # the session-wide moto server fixture

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> TraceLedger:
    return build_trace_ledger(tmp_path_factory.mktemp("traces") / "data")


@pytest.fixture
def script(tmp_path: Path) -> str:
    path = tmp_path / "traces_app.py"
    path.write_text("from dashboards.trace_page import render\n\nrender()\n")
    return str(path)


def open_page(script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch, **params: str) -> AppTest:
    monkeypatch.setenv("METERLINE_DATA_DIR", str(ledger.data_dir))
    app = AppTest.from_file(script, default_timeout=60)
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, app.exception
    return app


def picker(app: AppTest, label: str) -> Selectbox[str]:
    return next(box for box in app.selectbox if box.label == label)


def frames(app: AppTest) -> list[list[dict[str, object]]]:
    return [table.value.to_dict("records") for table in app.dataframe]


def test_a_trace_link_opens_the_waterfall_with_the_usage_record(
    script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(script, ledger, monkeypatch, trace_id=TRACE_A)
    assert app.subheader[0].value == f"Trace {TRACE_A}"
    waterfall, attributes, usage = frames(app)
    assert [(r["span"], r["service"], r["kind"], r["role"], r["status"], r["offset_ms"], r["duration_ms"])
            for r in waterfall] == [
        ("1. handle ticket", "support-agent", "INTERNAL", "", "ok", 0.0, 3000.0),
        ("2. · call llm", "support-agent", "CLIENT", "", "ok", 100.0, 2500.0),
        ("3. · · chat gpt-4o-mini", "meterline-gateway", "SERVER", "", "ok", 120.0, 2460.0),
        ("4. · · · chat gpt-4o-mini", "meterline-gateway", "CLIENT", "attempt 1", "error", 130.0, 270.0),
        ("5. · · · chat gpt-4o-mini", "meterline-gateway", "CLIENT", "retry", "ok", 460.0, 2110.0),
        ("6. · post reply", "support-agent", "INTERNAL", "", "ok", 2650.0, 250.0),
    ]  # fmt: skip
    # Beside it: the gateway's server span (the one with the usage record) is chosen first.
    assert picker(app, "Span").value == "3. · · chat gpt-4o-mini"
    attrs = {r["attribute"]: r["value"] for r in attributes}
    assert attrs["meterline.request.id"] == REQUEST_A
    assert attrs["gen_ai.usage.input_tokens"] == "1200" and attrs["parent_span_id"] == "a2a2a2a2a2a2a2a2"
    record = {r["field"]: r["value"] for r in usage}
    assert (record["request_id"], record["agent_id"], record["model"]) == (REQUEST_A, "support-bot", "gpt-4o-mini")
    assert (record["input_tokens"], record["output_tokens"], record["cost_usd"]) == ("1200", "345", "$0.000387")
    assert (record["attempts"], record["latency_ms"], record["status"]) == ("2", "2460.0", "ok")
    assert record["ts_start"] == (ledger.t0 + dt.timedelta(milliseconds=120)).isoformat()
    assert "$0.000387" in app.caption[-1].value and "6 spans" in app.caption[-1].value
    [chart] = app.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["y"]["sort"][0] == "1. handle ticket"


def test_choosing_a_span_shows_its_attributes(
    script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(script, ledger, monkeypatch, trace_id=TRACE_A)
    picker(app, "Span").select("4. · · · chat gpt-4o-mini").run()
    assert not app.exception
    attributes = {r["attribute"]: r["value"] for r in frames(app)[1]}
    assert (attributes["status"], attributes["error.type"], attributes["http.response.status_code"]) == (
        "ERROR", "upstream_http_500", "500",
    )  # fmt: skip
    assert attributes["meterline.deployment.id"] == "gpt-4o-mini#0"
    assert len(frames(app)) == 2  # an attempt has no usage record of its own


def test_a_request_id_opens_its_trace_with_the_fallback(
    script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(script, ledger, monkeypatch, request_id=REQUEST_B, since="2020-01-01", until="2020-01-02")
    assert app.subheader[0].value == f"Trace {TRACE_B}"  # an id ignores the range
    assert [r["role"] for r in frames(app)[0]] == ["", "attempt 1", "retry", "fallback"]
    record = {r["field"]: r["value"] for r in frames(app)[2]}
    assert (record["cost_usd"], record["fallback_used"], record["model_requested"]) == ("$0.00024", "True", "gpt-4o")


def test_search_lists_traces_newest_first(script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(script, ledger, monkeypatch, since="1h")
    results = frames(app)[0]
    assert [r["trace_id"] for r in results] == [TRACE_D, TRACE_B, TRACE_A]
    assert [(r["status"], r["agents"], r["requests"], r["spans"], r["cost_usd"]) for r in results] == [
        ("ok", "triage-bot", 1, 0, 0.000045),
        ("ok", "research-agent", 1, 4, 0.00024),
        ("ok", "support-bot", 1, 6, 0.000387),
    ]
    assert picker(app, "Open trace").value == TRACE_D  # the newest opens; another is one choice away
    picker(app, "Open trace").select(TRACE_A).run()
    assert app.subheader[0].value == f"Trace {TRACE_A}"


def test_filters_from_the_url(script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(script, ledger, monkeypatch, status="error", since="7d")
    assert [r["trace_id"] for r in frames(app)[0]] == [TRACE_C]
    app = open_page(script, ledger, monkeypatch, agent="support-bot", min_cost_usd="0.0003", min_latency_ms="2000")
    assert [r["trace_id"] for r in frames(app)[0]] == [TRACE_A]
    app = open_page(script, ledger, monkeypatch, min_latency_ms="fast")
    assert "min_latency_ms: 'fast' is not a number" in app.warning[0].value


def test_an_unknown_id_says_so(script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(script, ledger, monkeypatch, trace_id="0" * 32)
    assert app.error[0].value == f"No trace or request with id {'0' * 32!r} in the ledger."


def test_no_key_reaches_the_page(script: str, ledger: TraceLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    for params in ({"trace_id": TRACE_A}, {"trace_id": TRACE_B}, {"since": "7d"}):
        app = open_page(script, ledger, monkeypatch, **params)
        shown = json.dumps(frames(app), default=str) + " ".join(str(e.value) for e in [*app.markdown, *app.caption])
        assert AGENT_KEY not in shown and PROVIDER_KEY not in shown and "sk-" not in shown


def test_search_from_params() -> None:
    search = search_from_params({"start": "2026-12-01", "end": "2026-12-02", "status": "any"}, NOW, "Asia/Shanghai")
    assert search.query.since == dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)
    assert search.query.until == dt.datetime(2026, 12, 2, 16, 0, tzinfo=dt.UTC)  # the end day included
    assert search.query.status is None and search.ident is None and search.problems == ()
    default = search_from_params({}, NOW)
    assert default.query.since == NOW - dt.timedelta(hours=24)
    opened = search_from_params({"request_id": REQUEST_A, "since": "1h"}, NOW)
    assert (opened.ident, opened.query.since) == (REQUEST_A, None)
    bad = search_from_params({"since": "soon", "min_cost_usd": "x"}, NOW)
    assert len(bad.problems) == 2


def test_an_s3_ledger(script: str, tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_bucket(moto_url, monkeypatch, "ledger")
    on_s3 = build_trace_ledger(tmp_path / "local", storage_url="s3://ledger/prod", s3_endpoint_url=moto_url)
    monkeypatch.setenv("METERLINE_LEDGER_URL", "s3://ledger/prod")
    monkeypatch.setenv("METERLINE_S3_ENDPOINT_URL", moto_url)
    app = open_page(script, on_s3, monkeypatch, request_id=REQUEST_B)
    assert app.subheader[0].value == f"Trace {TRACE_B}"
    assert [r["role"] for r in frames(app)[0]] == ["", "attempt 1", "retry", "fallback"]
