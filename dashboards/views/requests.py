"""Requests: the ledger's rows for the sidebar's filters plus outcome, minimum cost and minimum
latency, newest first, a page at a time; a row opens its trace on the Traces page."""

from __future__ import annotations

import math

import polars as pl
import streamlit as st

from dashboards import data, ledger, nav
from dashboards.filters import mart_rows
from dashboards.shell import context
from dashboards.views.common import caption, table

OUTCOMES = ("all", "ok", "refused", "failed")


def _number(name: str) -> float | None:
    text = st.query_params.get(name, "")
    try:
        value = float(text) if text else None
    except ValueError:
        st.warning(f"Link parameter ignored: {name} {text!r} is not a number")
        return None
    return value if value is not None and math.isfinite(value) else None


def _set(name: str, value: str | None) -> None:
    if value is None or value == "":
        if name in st.query_params:
            del st.query_params[name]
    elif st.query_params.get(name) != value:
        st.query_params[name] = value


def render() -> None:
    ctx = context()
    f = ctx.filters
    st.title("Requests")
    caption(f, ctx.timezone)
    cells = st.columns(4)
    wanted = st.query_params.get("outcome", "all")
    outcome = cells[0].selectbox("Outcome", OUTCOMES, index=OUTCOMES.index(wanted) if wanted in OUTCOMES else 0)
    min_cost = cells[1].number_input("Min cost (USD)", min_value=0.0, value=_number("min_cost"), format="%.6f")
    min_latency = cells[2].number_input("Min latency (ms)", min_value=0.0, value=_number("min_latency_ms"))
    request_id = cells[3].text_input("Request id", value=st.query_params.get("request_id", "")).strip()
    before = dict(st.query_params.to_dict())
    _set("outcome", None if outcome == "all" else outcome)
    _set("min_cost", None if min_cost is None else f"{min_cost:g}")
    _set("min_latency_ms", None if min_latency is None else f"{min_latency:g}")
    _set("request_id", request_id or None)
    changed = {k: v for k, v in st.query_params.to_dict().items() if k != "page"} != {
        k: v for k, v in before.items() if k != "page"
    }
    raw_page = st.query_params.get("page", "1")
    page = 1 if changed or not raw_page.isdigit() else max(1, int(raw_page))

    query = ledger.RequestQuery(
        outcome=None if outcome == "all" else outcome,
        min_cost_usd=min_cost,
        min_latency_ms=min_latency,
        request_id=request_id or None,
        page=page,
    )
    rows, older = data.requests(ctx.timezone, f, query)
    plain = not (f.tag or query.outcome or query.min_cost_usd or query.min_latency_ms or query.request_id)
    if plain:  # the mart counts what the sidebar's filters select, without reading the ledger
        count = int(mart_rows(data.spend(f.since, f.until), f)["requests"].sum())
        pages = max(1, math.ceil(count / ledger.PAGE_SIZE))
        st.caption(
            f"{count:,} requests, newest first; page {page} of {pages}. Times in {ctx.timezone}. "
            "(Counted by the marts, as of the last analytics run.)"
        )
    else:
        st.caption(f"Newest first; page {page}. Times in {ctx.timezone}.")
    if rows.height == 0:
        st.info("No requests match these filters.")
        return
    traces = nav.has_traces()
    if traces:
        url = nav.page(nav.TRACES).url_path
        links = [
            f"{url}?trace_id={t}&request_id={r}" for t, r in zip(rows["trace_id"], rows["request_id"], strict=True)
        ]
        rows = rows.select("time", pl.Series("trace", links), pl.exclude("time"))
    table(
        rows,
        f"requests-page-{page}",
        {"trace": st.column_config.LinkColumn("trace", display_text="open", width="small")} if traces else {},
    )
    nav_cells = st.columns(3)
    if page > 1 and nav_cells[0].button("Newer"):
        st.query_params["page"] = str(page - 1)
        st.rerun()
    if older and nav_cells[2].button("Older"):
        st.query_params["page"] = str(page + 1)
        st.rerun()
    _open_trace(rows, traces)


def _open_trace(rows: pl.DataFrame, traces: bool) -> None:
    """A request's trace, one click away (the table's links open in a new tab)."""
    picked = st.selectbox("Request", rows["request_id"].to_list(), index=0)
    trace_id = rows.filter(pl.col("request_id") == picked)["trace_id"].item(0)
    if traces:
        st.page_link(
            nav.page(nav.TRACES),
            label=f"Open trace {trace_id}",
            query_params={"trace_id": trace_id, "request_id": picked},
        )
    else:
        st.caption(f"Trace {trace_id} (the Traces page is not installed).")


if __name__ == "__main__":
    render()
