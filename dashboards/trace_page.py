"""The Traces page (issue 15, the engineers' half): find a trace, read it as a waterfall.

`render()` draws it; the dashboard's navigation runs it (dashboards/views/traces.py). The search
form's values live in the URL (`st.query_params`), so a link reopens the same view: `trace_id`,
`request_id` (a response's `x-request-id`; opens its trace), `agent`, `model`, `status`,
`since` (or `start`) and `until` (or `end`), `min_latency_ms`, `min_cost_usd`. `since` and
`until` take a duration before now (`1h`, `7d`), an ISO time, or a date (a whole day in the
configured time zone, `until` included, as the other pages' sidebar writes them); without an
id or a range, the last 24 hours. With an id, the range is ignored.

The trace opens as a waterfall (Vega-Lite bars over the trace's duration, in start order and
parent-child depth: the agent's own spans, the gateway's server span, each upstream attempt
with its retries and fallbacks), with the chosen span's attributes and its usage record beside
it. The queries are analytics/traces' (the CLI's `meterline traces|trace`) over the ledger's
Parquet (local, or S3 when `METERLINE_LEDGER_URL` names it); nothing here holds a key (the
gateway never writes one into a span or a record).
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from analytics.traces.ledger import connect
from analytics.traces.render import plain, usd
from analytics.traces.search import TraceQuery, parse_time, search_traces
from analytics.traces.waterfall import TRACE_ID, Trace, load_trace, resolve_trace_id
from dashboards.filters import LEDGER_URL_ENV, S3_ENDPOINT_ENV, S3_REGION_ENV
from meterline.layout import DataLayout
from meterline.storage import StorageTarget, open_target
from meterline.storage.local import LocalTarget

DATA_DIR_ENV = "METERLINE_DATA_DIR"
TIMEZONE_ENV = "METERLINE_TIMEZONE"
CACHE_TTL_SECONDS = 10
STATUSES = ("any", "ok", "error", "client_disconnected")
DEFAULT_SINCE = "24h"
RESULT_COLUMNS = ("ts_start", "trace_id", "duration_ms", "status", "agents", "models", "requests", "spans",
                  "cost_usd", "root")  # fmt: skip


@dataclass(frozen=True)
class Search:
    """The page's filters as read from the URL, with what could not be read."""

    query: TraceQuery
    ident: str | None
    problems: tuple[str, ...] = ()


def _moment(text: str, now: dt.datetime, zone: zoneinfo.ZoneInfo, end: bool) -> dt.datetime:
    """A URL time: a date is a whole local day (an end date includes its day)."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        return parse_time(text, now)
    return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), zone)


def search_from_params(params: Mapping[str, str], now: dt.datetime, timezone: str = "UTC") -> Search:
    """The search a URL asks for; a value that cannot be read is dropped and named."""
    zone = zoneinfo.ZoneInfo(timezone)
    problems: list[str] = []
    fields: dict[str, Any] = {}
    for key, name, end in (("since", "since", False), ("start", "since", False), ("until", "until", True),
                           ("end", "until", True)):  # fmt: skip
        if params.get(key) and name not in fields:
            try:
                fields[name] = _moment(params[key], now, zone, end)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
    for key in ("min_latency_ms", "min_cost_usd"):
        if params.get(key):
            try:
                fields[key] = float(params[key])
            except ValueError:
                problems.append(f"{key}: {params[key]!r} is not a number")
    for key in ("agent", "model"):
        if params.get(key):
            fields[key] = params[key].strip()
    if params.get("status") and params["status"] != "any":
        fields["status"] = params["status"].strip()
    ident = (params.get("trace_id") or params.get("request_id") or "").strip() or None
    if ident is not None:
        fields.pop("since", None)
        fields.pop("until", None)
    elif "since" not in fields and "until" not in fields:
        fields["since"] = parse_time(DEFAULT_SINCE, now)
    return Search(TraceQuery(**fields), ident, tuple(problems))


def _target(data_dir: str, ledger_url: str | None) -> StorageTarget:
    if ledger_url:
        endpoint, region = os.environ.get(S3_ENDPOINT_ENV) or None, os.environ.get(S3_REGION_ENV) or None
        return open_target(DataLayout.at(data_dir), ledger_url, endpoint, region)
    return LocalTarget(DataLayout.at(data_dir))


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _search(data_dir: str, ledger_url: str | None, query: TraceQuery) -> list[dict[str, Any]]:
    with connect(_target(data_dir, ledger_url)) as con:
        return search_traces(con, query)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _trace(data_dir: str, ledger_url: str | None, ident: str) -> Trace | None:
    with connect(_target(data_dir, ledger_url)) as con:
        trace_id = resolve_trace_id(con, ident)
        return load_trace(con, trace_id) if trace_id else None


def _form(params: Mapping[str, str]) -> None:
    """The search form, filled from the URL; submitting writes the URL (and so reruns)."""
    with st.form("trace-search"):
        top = st.columns(4)
        ident = top[0].text_input("Trace or request id", value=params.get("trace_id") or params.get("request_id", ""))
        agent = top[1].text_input("Agent", value=params.get("agent", ""))
        model = top[2].text_input("Model", value=params.get("model", ""))
        status = params.get("status", "any")
        status = top[3].selectbox("Status", STATUSES, index=STATUSES.index(status) if status in STATUSES else 0)
        low = st.columns(4)
        since = low[0].text_input("Since (1h, 7d, a date or time)", value=params.get("since", DEFAULT_SINCE))
        until = low[1].text_input("Until", value=params.get("until", ""))
        latency = low[2].text_input("Min latency (ms)", value=params.get("min_latency_ms", ""))
        cost = low[3].text_input("Min cost (USD)", value=params.get("min_cost_usd", ""))
        if st.form_submit_button("Search"):
            wanted = {
                "trace_id" if TRACE_ID.match(ident.strip()) else "request_id": ident.strip(),
                "agent": agent.strip(), "model": model.strip(), "status": "" if status == "any" else status,
                "since": since.strip(), "until": until.strip(), "min_latency_ms": latency.strip(),
                "min_cost_usd": cost.strip(),
            }  # fmt: skip
            st.query_params.clear()
            st.query_params.update({k: v for k, v in wanted.items() if v})
            st.rerun()


def _results(found: list[dict[str, Any]]) -> None:
    rows = [{c: (", ".join(row[c]) if isinstance(row[c], list) else row[c]) for c in RESULT_COLUMNS} for row in found]
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "ts_start": st.column_config.DatetimeColumn("start (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
            "cost_usd": st.column_config.NumberColumn(format="$%.6f"),
            "duration_ms": st.column_config.NumberColumn(format="%.1f"),
        },
    )


def _label(index: int, trace: Trace) -> str:
    span = trace.spans[index]
    return f"{index + 1}. {'· ' * span.depth}{span.name}"


def _waterfall(trace: Trace) -> None:
    labels = [_label(i, trace) for i in range(len(trace.spans))]
    values = [
        {
            "span": labels[i],
            "start_ms": s.offset_ms,
            "end_ms": s.offset_ms + s.duration_ms,
            "duration_ms": s.duration_ms,
            "service": s.service_name or "",
            "kind": s.kind or "",
            "role": s.role or "",
            "status": "error" if s.status_code == "ERROR" else "ok",
        }
        for i, s in enumerate(trace.spans)
    ]
    chart = (
        alt.Chart(pl.DataFrame(values))
        .mark_bar()
        .encode(
            y=alt.Y("span:N", sort=labels, title=None, axis=alt.Axis(labelLimit=420)),
            x=alt.X("start_ms:Q", title="ms from the trace's start", scale=alt.Scale(domain=[0, trace.duration_ms])),
            x2="end_ms:Q",
            color=alt.Color("status:N", scale=alt.Scale(domain=["ok", "error"], range=["#4c78a8", "#e45756"])),
            tooltip=["span:N", "service:N", "kind:N", "role:N", "duration_ms:Q", "start_ms:Q"],
        )
        .properties(height=max(120, 28 * len(values)))
    )
    st.altair_chart(chart, width="stretch")
    st.dataframe(
        [{"span": labels[i], "service": v["service"], "kind": v["kind"], "role": v["role"], "status": v["status"],
          "offset_ms": v["start_ms"], "duration_ms": v["duration_ms"]} for i, v in enumerate(values)],
        hide_index=True,
    )  # fmt: skip


def _usage_rows(record: dict[str, Any]) -> list[dict[str, str]]:
    """The usage record as field/value text: money to the nanodollar, times in UTC."""
    rows = []
    for key, value in record.items():
        if key == "cost_usd" or key == "cost_saved_usd":
            text = usd(value)
        else:
            shown = plain(value)
            text = "" if shown is None else str(shown)
        rows.append({"field": key, "value": text})
    return rows


def _details(trace: Trace) -> None:
    """The chosen span's attributes and its usage record (default: the first span with one)."""
    labels = [_label(i, trace) for i in range(len(trace.spans))]
    first = next((i for i, s in enumerate(trace.spans) if s.usage is not None), 0)
    picked = labels.index(st.selectbox("Span", labels, index=first, key=f"span-{trace.trace_id}"))
    span = trace.spans[picked]
    st.markdown(
        f"**{span.name}** `{span.span_id}`" + ("" if span.stored else " (span not stored; from its usage record)")
    )
    attributes = {"kind": span.kind, "service": span.service_name, "status": span.status_code,
                  "status_message": span.status_message, "parent_span_id": span.parent_span_id,
                  **span.attributes}  # fmt: skip
    st.dataframe(
        [{"attribute": k, "value": "" if v is None else str(plain(v))} for k, v in attributes.items()],
        hide_index=True,
    )
    if span.usage is not None:
        st.markdown(f"**Usage record** `{span.usage['request_id']}`")
        st.dataframe(_usage_rows(span.usage), hide_index=True)
    elif trace.usage:
        st.caption("No usage record on this span; the trace's: " + ", ".join(r["request_id"] for r in trace.usage))


def render() -> None:
    st.title("Traces")
    data_dir = os.environ.get(DATA_DIR_ENV, "./data")
    timezone = os.environ.get(TIMEZONE_ENV, "UTC") or "UTC"
    params = {key: st.query_params[key] for key in st.query_params}
    search = search_from_params(params, dt.datetime.now(dt.UTC), timezone)
    for problem in search.problems:
        st.warning(f"Link parameter ignored: {problem}")
    _form(params)
    ledger_url = os.environ.get(LEDGER_URL_ENV) or None
    if ledger_url is None and not DataLayout.at(data_dir).root.is_dir():
        st.info(f"No ledger at {data_dir} yet: traces appear once the collector has written spans or usage records.")
        return
    ident = search.ident
    if ident is None:
        found = _search(data_dir, ledger_url, search.query)
        st.caption(f"{len(found)} traces, newest first (times UTC; dates in the URL are {timezone} days).")
        _results(found)
        if not found:
            return
        choices = [row["trace_id"] for row in found]
        ident = st.selectbox("Open trace", choices, index=0)
    trace = _trace(data_dir, ledger_url, ident)
    if trace is None:
        st.error(f"No trace or request with id {ident!r} in the ledger.")
        return
    st.subheader(f"Trace {trace.trace_id}")
    cost = float(sum((Decimal(repr(r["cost_usd"] or 0.0)) for r in trace.usage), Decimal(0)))
    st.caption(
        f"{trace.ts_start.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC · {trace.duration_ms:.1f} ms · "
        f"{len(trace.spans)} spans · {len(trace.usage)} usage records · {usd(cost) if trace.usage else 'no cost'}"
    )
    chart, side = st.columns([3, 2])
    with chart:
        _waterfall(trace)
    with side:
        _details(trace)
