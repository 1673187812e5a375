"""What the spend page shows, as plain functions over the `spend_daily` mart.

Kept free of Streamlit so every number on the page is tested without a browser; the page
(`dashboards/app.py`) only lays these results out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from analytics.spend_daily import read_spend_daily
from analytics.usd import sum_usd
from meterline.layout import DataLayout


@dataclass(frozen=True)
class SpendTotals:
    today_usd: float
    month_to_date_usd: float


def utc_today() -> dt.date:
    """Today as the ledger dates it: the mart's `date` is the UTC partition date."""
    return dt.datetime.now(dt.UTC).date()


def load_spend(layout: DataLayout, since: dt.date, until: dt.date) -> pl.DataFrame:
    """Mart rows with `since <= date <= until`; no mart yet -> no rows."""
    return read_spend_daily(layout, since, until)


def has_data(layout: DataLayout) -> bool:
    """Whether any spend has reached the mart, in any date range."""
    return read_spend_daily(layout).height > 0


def spend_totals(layout: DataLayout, today: dt.date) -> SpendTotals:
    """Spend on `today` and from the 1st of its month through `today`, whatever range is shown."""
    month = load_spend(layout, today.replace(day=1), today)
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


def format_usd(value: float) -> str:
    """Dollars as every Meterline surface prints them: 6 decimals, so small agents are not $0.00."""
    return f"${value:,.6f}"
