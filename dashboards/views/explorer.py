"""Spend explorer: spend, tokens, requests, error and refusal rates, cache savings and cost per
request by agent, team, project, model, provider or tag, daily or hourly; every row opens the
requests behind it; every table downloads as CSV."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import data, ledger, nav
from dashboards.filters import page_link
from dashboards.shell import Context, context
from dashboards.views.common import bar_by_day, caption, hbar, money, requests_link, table

BY_OPTIONS = ("agent", "team", "project", "model", "provider", "tag")
TOP_BARS = 20
# Dimensions a row's requests link can filter on (the sidebar's filters). Comments, not
# docstrings, in a page script: Streamlit's magic would print a bare string on the page.
BY_FILTER = {"agent": "agent", "team": "team", "model": "model"}


def render() -> None:
    ctx = context()
    f = ctx.filters
    st.title("Spend explorer")
    caption(f, ctx.timezone)
    by = _choice("Group by", BY_OPTIONS, "by", "agent")
    if by == "tag":
        key = st.text_input("Tag key", value=st.query_params.get("tag_key", "cost_center")).strip() or "cost_center"
        st.query_params["tag_key"] = key
        by = f"tag:{key}"
    days = (f.until - f.since).days + 1
    grains = ledger.GRAINS if days <= ledger.HOURLY_MAX_DAYS else ("day",)
    grain = _choice("Time grain", grains, "grain", "day")

    totals = data.totals(ctx.timezone, f)
    cells = st.columns(5)
    cells[0].metric("Spend", money(float(totals["cost_usd"])))
    cells[1].metric("Requests", f"{int(totals['requests']):,}")
    cells[2].metric("Error rate", f"{100 * float(totals['error_rate']):.1f}%")
    cells[3].metric("Refusal rate", f"{100 * float(totals['refusal_rate']):.1f}%")
    cells[4].metric("Cache savings", money(float(totals["cost_saved_usd"])))
    cells = st.columns(5)
    cells[0].metric("Cost per request", money(float(totals["cost_per_request_usd"])))
    cells[1].metric("Input tokens", f"{int(totals['input_tokens']):,}")
    cells[2].metric("Output tokens", f"{int(totals['output_tokens']):,}")
    cells[3].metric("Cached input tokens", f"{int(totals['cached_tokens']):,}")
    cells[4].metric("Reasoning tokens", f"{int(totals['reasoning_tokens']):,}")
    requests_link(f, "The requests behind these numbers")

    spend_tab, problems_tab, latency_tab = st.tabs(["Spend", "Errors and refusals", "Latency"])
    with spend_tab:
        _spend(ctx, by, grain)
    with problems_tab:
        _problems(ctx)
    with latency_tab:
        _latency(ctx)


def _choice(label: str, options: tuple[str, ...], param: str, default: str) -> str:
    current = st.query_params.get(param, default)
    index = options.index(current) if current in options else options.index(default)
    picked = str(st.radio(label, options, index=index, horizontal=True))
    if st.query_params.get(param) != picked:
        st.query_params[param] = picked
    return picked


def _spend(ctx: Context, by: str, grain: str) -> None:
    f = ctx.filters
    rows = data.breakdown(ctx.timezone, f, by)
    if rows.height == 0:
        st.info(f"No requests between {f.since.isoformat()} and {f.until.isoformat()} for {f.label}.")
        return
    url = nav.page(nav.REQUESTS).url_path
    link = pl.Series("requests_link", [_row_link(url, ctx, by, value) for value in rows[by].to_list()])
    st.subheader(f"By {by}")
    hbar(rows.head(TOP_BARS), by, "cost_usd", f"spend (USD), top {min(TOP_BARS, rows.height)} by {by}")
    table(
        rows.with_columns(link),
        f"spend-by-{by.replace(':', '-')}",
        {
            "requests_link": st.column_config.LinkColumn("requests", display_text="open", width="small"),
        },
    )
    timeline = data.series(ctx.timezone, f, grain)
    st.subheader(f"Spend per {grain} ({ctx.timezone})")
    if grain == "day":
        bar_by_day(timeline.rename({"time": "date"}), "cost_usd", None, "spend (USD)", ctx.timezone)
    else:
        st.bar_chart(timeline.to_pandas(), x="time", y="cost_usd", x_label=f"hour ({ctx.timezone})", y_label="USD")
    table(timeline, f"spend-per-{grain}")


def _row_link(url: str, ctx: Context, by: str, value: object) -> str | None:
    """The Requests page on this row's requests, when the row is a value the filters can hold
    (a tag, a team, an agent, an answering model); else the range's requests."""
    f = ctx.filters
    if by.startswith("tag:") and value != ledger.NONE_LABEL:
        return page_link(url, f.replace(tag=(by.removeprefix("tag:"), str(value))))
    if by in BY_FILTER and value is not None and not str(value).startswith("("):
        return page_link(url, f.replace(**{BY_FILTER[by]: str(value)}))
    if by in ("model", "provider") and str(value) in ("(failed)", "(refused)"):
        return page_link(url, f, outcome=str(value).strip("()"))
    return page_link(url, f)


def _problems(ctx: Context) -> None:
    f = ctx.filters
    rows = data.problems(ctx.timezone, f)
    st.subheader("Refused and failed requests")
    st.caption(
        "Refused: turned away with a 4xx (quota, model not allowed, bad request). Failed: 5xx, timeouts, "
        "clients that went away. Neither is counted under a model: no model answered."
    )
    if rows.height == 0:
        st.info("No refused or failed requests in this range.")
        return
    table(rows, "errors-and-refusals")
    cells = st.columns(2)
    with cells[0]:
        requests_link(f, "Refused requests", outcome="refused")
    with cells[1]:
        requests_link(f, "Failed requests", outcome="failed")


def _latency(ctx: Context) -> None:
    f = ctx.filters
    latency = data.latency(f.since, f.until)
    if f.model:
        latency = latency.filter(pl.col("model") == f.model)
    if latency.height == 0:
        st.info("No latency figures for this range.")
        return
    quantile = st.radio("Quantile", ["p50", "p95", "p99"], index=1, horizontal=True)
    for column, title in ((f"latency_{quantile}_ms", "Latency"), (f"ttft_{quantile}_ms", "Time to first token")):
        st.subheader(f"{title} {quantile} by model (ms)")
        frame = latency.select("date", "model", column).with_columns(pl.col("date").cast(pl.String)).to_pandas()
        # Points on the line, so a single day still shows its value.
        chart = (
            alt.Chart(frame)
            .mark_line(point=True)
            .encode(
                x=alt.X("date:O", title=f"day ({ctx.timezone})", axis=alt.Axis(labelAngle=-45)),
                y=alt.Y(f"{column}:Q", title="ms"),
                color="model:N",
                tooltip=["date", "model", column],
            )
        )
        st.altair_chart(chart, width="stretch")
    table(latency.sort(["date", "model"], descending=[True, False]), "latency-by-day-and-model")


if __name__ == "__main__":
    render()
