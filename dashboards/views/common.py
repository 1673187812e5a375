"""Layout helpers every page uses: money, dates and links in one format; a CSV on every table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import altair as alt
import polars as pl
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from dashboards import nav
from dashboards.filters import Filters
from dashboards.queries import format_usd

MONEY_FORMAT = "$%.6f"
"""Every money column: dollars with 6 decimals, as `format_usd` prints a metric."""
USD = st.column_config.NumberColumn(format=MONEY_FORMAT)
PERCENT = st.column_config.NumberColumn(format="percent")
DATE = st.column_config.DateColumn(format="YYYY-MM-DD")
DATETIME = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")

money = format_usd


def caption(context_filters: Filters, timezone: str) -> None:
    """The page's scope, range and zone, on every page."""
    f = context_filters
    st.caption(
        f"Filters: {f.label}. Range {f.since.isoformat()} to {f.until.isoformat()}, days in {timezone}. Money in USD."
    )


def table(
    frame: pl.DataFrame, name: str, config: Mapping[str, ColumnConfig] | None = None, *, height: int | None = None
) -> None:
    """A sortable table (click a header) and its CSV download, the money and date columns
    formatted alike everywhere."""
    column_config: dict[str, ColumnConfig] = {}
    for column, dtype in frame.schema.items():
        if column.endswith("_usd"):
            column_config[column] = USD
        elif column.endswith("_rate") or column == "change_pct":
            column_config[column] = PERCENT
        elif dtype == pl.Date:
            column_config[column] = DATE
        elif isinstance(dtype, pl.Datetime):
            column_config[column] = DATETIME
    column_config.update(config or {})
    st.dataframe(frame, hide_index=True, column_config=column_config, height=height or "auto")
    st.download_button(
        f"Download {name}.csv", frame.write_csv(), file_name=f"{name}.csv", mime="text/csv", key=f"csv-{name}"
    )


def requests_link(filters: Filters, label: str, **extra: str | None) -> None:
    """A link to the Requests page opened on `filters` (plus `extra`): the requests behind a number."""
    params = {**filters.params(), **{key: value for key, value in extra.items() if value is not None}}
    st.page_link(nav.page(nav.REQUESTS), label=label, query_params=params)


def day_filters(filters: Filters, since: dt.date, until: dt.date) -> Filters:
    return filters.replace(since=since, until=until, budget=None)


def bar_by_day(frame: pl.DataFrame, value: str, color: str | None, title: str, timezone: str) -> None:
    """Bars per day (a day is a bar even when it is the only one), dates as dates."""
    data = frame.with_columns(pl.col("date").cast(pl.String))
    encoding: dict[str, object] = {
        "x": alt.X("date:O", title=f"day ({timezone})", axis=alt.Axis(labelAngle=-45)),
        "y": alt.Y(f"{value}:Q", title=title, axis=alt.Axis(format="$,.2f")),
        "tooltip": ["date", alt.Tooltip(f"{value}:Q", format="$,.6f"), *([color] if color else [])],
    }
    if color:
        encoding["color"] = alt.Color(f"{color}:N")
    st.altair_chart(alt.Chart(data.to_pandas()).mark_bar().encode(**encoding), width="stretch")


def hbar(frame: pl.DataFrame, label: str, value: str, title: str) -> None:
    """Horizontal bars: the names down the side, the money along the bottom."""
    chart = (
        alt.Chart(frame.to_pandas())
        .mark_bar()
        .encode(
            # field= and type=, not shorthand: a tag dimension's name (`tag:cost_center`) has a colon.
            x=alt.X(field=value, type="quantitative", title=title, axis=alt.Axis(format="$,.2f")),
            y=alt.Y(field=label, type="nominal", sort="-x", title=label),
            tooltip=[
                alt.Tooltip(field=label, type="nominal"),
                alt.Tooltip(field=value, type="quantitative", format="$,.6f"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch")
