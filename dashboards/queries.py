"""What the spend page shows, as plain functions over the marts (spend_daily, spend_monthly,
latency_daily).

Kept free of Streamlit so every number on the page is tested without a browser; the page
(`dashboards/app.py`) only lays these results out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from analytics.latency_daily import read_latency_daily
from analytics.spend_daily import read_spend_daily
from analytics.spend_monthly import read_spend_monthly
from analytics.usd import sum_usd
from dashboards.filters import in_scope
from meterline.layout import DataLayout


@dataclass(frozen=True)
class SpendTotals:
    today_usd: float
    month_to_date_usd: float


def load_spend(layout: DataLayout, since: dt.date, until: dt.date) -> pl.DataFrame:
    """Mart rows with `since <= date <= until`; no mart yet -> no rows."""
    return read_spend_daily(layout, since, until)


def has_data(layout: DataLayout) -> bool:
    """Whether any spend has reached the mart, in any date range."""
    return read_spend_daily(layout).height > 0


def spend_totals(layout: DataLayout, today: dt.date, scope: Mapping[str, str] | None = None) -> SpendTotals:
    """Spend of `scope` (default: everything) on `today` and from the 1st of its month through
    `today` (local days), whatever range is shown."""
    month = in_scope(load_spend(layout, today.replace(day=1), today), scope or {})
    sums = month.select(
        sum_usd("cost_usd").alias("month"),
        sum_usd(pl.col("cost_usd").filter(pl.col("date") == today)).alias("today"),
    )
    return SpendTotals(today_usd=sums.item(0, "today"), month_to_date_usd=sums.item(0, "month"))


def spend_by_agent(daily: pl.DataFrame) -> pl.DataFrame:
    """agent_id, team, requests, tokens and cost_usd per agent, most expensive first."""
    return (
        daily.group_by("agent_id")
        .agg(
            pl.col("team").unique().sort().str.join(", "),
            pl.col("requests").sum(),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
            sum_usd("cost_usd"),
        )
        .sort(["cost_usd", "agent_id"], descending=[True, False])
    )


def spend_by_day(daily: pl.DataFrame) -> pl.DataFrame:
    """One row per date, one cost_usd column per agent (0.0 where it spent nothing), by date."""
    per_day = daily.group_by("date", "agent_id").agg(sum_usd("cost_usd"))
    if per_day.height == 0:
        return pl.DataFrame(schema={"date": pl.Date()})
    return per_day.pivot(on="agent_id", index="date", values="cost_usd", sort_columns=True).fill_null(0.0).sort("date")


def spent(daily: pl.DataFrame) -> float:
    """The exact total of `cost_usd` (0.0 for no rows)."""
    total: float | None = daily.select(sum_usd("cost_usd")).item()
    return total or 0.0


def load_monthly(layout: DataLayout, since: dt.date, until: dt.date) -> pl.DataFrame:
    """`spend_monthly` rows for the months from `since` through `until`."""
    return read_spend_monthly(layout, since, until)


def spend_by_month(monthly: pl.DataFrame) -> pl.DataFrame:
    """One row per month, one cost_usd column per agent (0.0 where it spent nothing)."""
    per_month = monthly.group_by("month", "agent_id").agg(sum_usd("cost_usd"))
    if per_month.height == 0:
        return pl.DataFrame(schema={"month": pl.Date()})
    pivot = per_month.pivot(on="agent_id", index="month", values="cost_usd", sort_columns=True)
    return pivot.fill_null(0.0).sort("month")


def load_latency(layout: DataLayout, since: dt.date, until: dt.date) -> pl.DataFrame:
    return read_latency_daily(layout, since, until)


def latency_by_day(latency: pl.DataFrame, column: str) -> pl.DataFrame:
    """One row per date, one `column` value per model (quantiles never add up, so no sums)."""
    if latency.height == 0:
        return pl.DataFrame(schema={"date": pl.Date()})
    pivot = latency.pivot(on="model", index="date", values=column, sort_columns=True)
    return pivot.sort("date")


def format_usd(value: float) -> str:
    """Dollars as every Meterline surface prints them: 6 decimals, so small agents are not $0.00."""
    return f"${value:,.6f}"
