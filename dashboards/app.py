"""Meterline: spend. One Streamlit page over the `spend_daily` mart.

Run with `streamlit run dashboards/app.py` (or `meterline dashboard`); the data directory comes
from `METERLINE_DATA_DIR` (default ./data). The page reads only the mart, which holds no keys,
prompts or key aliases, so nothing secret can reach the browser.
"""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
import streamlit as st

from dashboards import queries
from meterline.layout import DataLayout

DATA_DIR_ENV = "METERLINE_DATA_DIR"
DEFAULT_DATA_DIR = "./data"
DEFAULT_RANGE_DAYS = 30
# Short enough that a reload shows the marts' latest rebuild, long enough to spare the disk a
# read on every widget interaction. (A comment, not a docstring: Streamlit's "magic" would
# print a bare string literal on the page.)
CACHE_TTL_SECONDS = 5


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _has_data(data_dir: str) -> bool:
    return queries.has_data(DataLayout.at(data_dir))


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _totals(data_dir: str, today: dt.date) -> queries.SpendTotals:
    return queries.spend_totals(DataLayout.at(data_dir), today)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _spend(data_dir: str, since: dt.date, until: dt.date) -> pl.DataFrame:
    return queries.load_spend(DataLayout.at(data_dir), since, until)


def _date_range(today: dt.date) -> tuple[dt.date, dt.date]:
    default = (today - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), today)
    picked = st.date_input("Date range (UTC)", value=default, max_value=today)
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

    if not _has_data(data_dir):
        st.info(
            "No spend recorded yet. Once agents call the gateway and `meterline analytics run` "
            "(or `serve`) has built the marts, spend shows up here."
        )
        return

    today = queries.utc_today()
    totals = _totals(data_dir, today)
    today_col, month_col = st.columns(2)
    today_col.metric("Spend today", queries.format_usd(totals.today_usd))
    month_col.metric("Month to date", queries.format_usd(totals.month_to_date_usd))

    since, until = _date_range(today)
    daily = _spend(data_dir, since, until)
    if daily.height == 0:
        st.info(f"No spend between {since.isoformat()} and {until.isoformat()}.")
        return

    st.subheader("Spend by agent (USD)")
    by_agent = queries.spend_by_agent(daily)
    st.bar_chart(by_agent, x="agent_id", y="cost_usd", horizontal=True, x_label="USD", y_label="agent")

    st.subheader("Spend by day and agent (USD)")
    by_day = queries.spend_by_day(daily)
    agents = [name for name in by_day.columns if name != "date"]
    st.bar_chart(by_day, x="date", y=agents, stack=True, x_label="date (UTC)", y_label="USD")

    st.subheader("Daily spend")
    st.dataframe(
        daily.sort(["date", "cost_usd"], descending=[True, True]),
        hide_index=True,
        column_config={"cost_usd": st.column_config.NumberColumn("cost_usd", format="$%.6f")},
    )


# Streamlit runs this file as __main__; a plain import (tests, tooling) renders nothing.
if __name__ == "__main__":
    render_page()
