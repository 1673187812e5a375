"""Meterline: spend. One Streamlit page over the marts: daily and monthly spend, latency.

Run with `meterline dashboard` (or `streamlit run dashboards/app.py`). The directory holding the
marts comes from `METERLINE_DATA_DIR` (default ./data; with an S3 ledger, `meterline dashboard`
passes `storage.local_dir`, where analytics writes the marts), the time zone from `METERLINE_TIMEZONE` and the
budgets from `METERLINE_BUDGETS` (dashboards/filters.py). An alarm's link opens the page on its
scope, budget and period. The page reads only the marts, which hold no keys, prompts or key
aliases, and budgets without their channels, so nothing secret can reach the browser.
"""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
import streamlit as st

from dashboards import filters, queries
from meterline.layout import DataLayout

DATA_DIR_ENV = "METERLINE_DATA_DIR"
DEFAULT_DATA_DIR = "./data"
DEFAULT_RANGE_DAYS = 30
MONTHS_SHOWN = 12
# Short enough that a reload shows the marts' latest rebuild, long enough to spare the disk a
# read on every widget interaction. (A comment, not a docstring: Streamlit's "magic" would
# print a bare string literal on the page.)
CACHE_TTL_SECONDS = 5
USD = st.column_config.NumberColumn(format="$%.6f")


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _has_data(data_dir: str) -> bool:
    return queries.has_data(DataLayout.at(data_dir))


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _spend(data_dir: str, since: dt.date, until: dt.date) -> pl.DataFrame:
    return queries.load_spend(DataLayout.at(data_dir), since, until)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _monthly(data_dir: str, since: dt.date, until: dt.date) -> pl.DataFrame:
    return queries.load_monthly(DataLayout.at(data_dir), since, until)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _latency(data_dir: str, since: dt.date, until: dt.date) -> pl.DataFrame:
    return queries.load_latency(DataLayout.at(data_dir), since, until)


def _date_range(today: dt.date, view: filters.View, timezone: str) -> tuple[dt.date, dt.date]:
    default = (view.since, view.until) if view.since and view.until else (today - dt.timedelta(days=29), today)
    latest = max(today, default[1])
    picked = st.date_input(f"Date range ({timezone})", value=default, max_value=latest)
    # While a range is half-picked the widget returns a single date (or a 1-tuple).
    if isinstance(picked, dt.date):
        return picked, picked
    if isinstance(picked, tuple) and len(picked) == 2:
        return picked[0], picked[1]
    if isinstance(picked, tuple) and len(picked) == 1:
        return picked[0], picked[0]
    return default


def render_page() -> None:
    st.set_page_config(page_title="Meterline: spend", layout="wide")
    st.title("Meterline: spend")
    data_dir = os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)
    timezone = filters.timezone_from_env()
    view = filters.view_from_link(
        {key: st.query_params[key] for key in ("scope", "budget", "period") if key in st.query_params},
        filters.budgets_from_env(),
    )
    for problem in view.problems:
        st.warning(f"Link parameter ignored: {problem}")

    if not _has_data(data_dir):
        st.info(
            "No spend recorded yet. Once agents call the gateway and `meterline analytics run` "
            "(or `serve`) has built the marts, spend shows up here."
        )
        return

    today = filters.local_today(timezone)
    st.caption(f"Scope: {view.scope_label}. Days and months in {timezone}.")
    month = filters.in_scope(_spend(data_dir, today.replace(day=1), today), view.scope)
    columns = st.columns(3 if view.budget else 2)
    columns[0].metric("Spend today", queries.format_usd(queries.spent(month.filter(pl.col("date") == today))))
    columns[1].metric("Month to date", queries.format_usd(queries.spent(month)))

    since, until = _date_range(today, view, timezone)
    daily = filters.in_scope(_spend(data_dir, since, until), view.scope)
    if view.budget:
        spent = queries.spent(daily)
        columns[2].metric(
            f"Budget {view.budget.name} ({since.isoformat()} to {until.isoformat()})",
            f"{queries.format_usd(spent)} of {queries.format_usd(view.budget.amount_usd)}",
            f"{100 * spent / view.budget.amount_usd:.1f}%",
            delta_color="off",
        )

    daily_tab, monthly_tab, latency_tab = st.tabs(["Daily spend", "Monthly spend", "Latency"])
    with daily_tab:
        _daily(daily, since, until, timezone)
    with monthly_tab:
        first = filters.month_start(until, -(MONTHS_SHOWN - 1))
        _months(filters.in_scope(_monthly(data_dir, first, until), view.scope), first, until)
    with latency_tab:
        latency = _latency(data_dir, since, until)
        if "model" in view.scope:
            latency = latency.filter(pl.col("model") == view.scope["model"])
        _latencies(latency, timezone)


def _daily(daily: pl.DataFrame, since: dt.date, until: dt.date, timezone: str) -> None:
    if daily.height == 0:
        st.info(f"No spend between {since.isoformat()} and {until.isoformat()}.")
        return
    st.subheader("Spend by agent (USD)")
    by_agent = queries.spend_by_agent(daily)
    st.bar_chart(by_agent, x="agent_id", y="cost_usd", horizontal=True, x_label="USD", y_label="agent")
    st.subheader("Spend by day and agent (USD)")
    by_day = queries.spend_by_day(daily)
    agents = [name for name in by_day.columns if name != "date"]
    st.bar_chart(by_day, x="date", y=agents, stack=True, x_label=f"date ({timezone})", y_label="USD")
    st.subheader("Daily spend")
    st.dataframe(
        daily.sort(["date", "cost_usd"], descending=[True, True]),
        hide_index=True,
        column_config={"cost_usd": USD, "cost_saved_usd": USD},
    )


def _months(monthly: pl.DataFrame, first: dt.date, until: dt.date) -> None:
    if monthly.height == 0:
        st.info(f"No spend in the months {first:%Y-%m} to {until:%Y-%m}.")
        return
    st.subheader("Spend by month and agent (USD)")
    by_month = queries.spend_by_month(monthly)
    agents = [name for name in by_month.columns if name != "month"]
    st.bar_chart(by_month, x="month", y=agents, stack=True, x_label="month", y_label="USD")
    st.subheader("Monthly spend")
    st.dataframe(
        monthly.sort(["month", "cost_usd"], descending=[True, True]),
        hide_index=True,
        column_config={"cost_usd": USD, "cost_saved_usd": USD},
    )


def _latencies(latency: pl.DataFrame, timezone: str) -> None:
    if latency.height == 0:
        st.info("No latency figures for this range.")
        return
    quantile = st.radio("Quantile", ["p50", "p95", "p99"], index=1, horizontal=True)
    st.subheader(f"Latency {quantile} by model (ms)")
    by_day = queries.latency_by_day(latency, f"latency_{quantile}_ms")
    models = [name for name in by_day.columns if name != "date"]
    st.line_chart(by_day, x="date", y=models, x_label=f"date ({timezone})", y_label="ms")
    st.subheader(f"Time to first token {quantile} by model (ms, streams only)")
    ttft = queries.latency_by_day(latency, f"ttft_{quantile}_ms")
    st.line_chart(ttft, x="date", y=[name for name in ttft.columns if name != "date"], y_label="ms")
    st.subheader("Latency by day and model")
    st.dataframe(latency.sort(["date", "model"], descending=[True, False]), hide_index=True)


# Streamlit runs this file as __main__; a plain import (tests, tooling) renders nothing.
if __name__ == "__main__":
    render_page()
