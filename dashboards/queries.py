"""What the Overview and Budgets pages show, as plain functions over the marts (spend_daily,
spend_monthly, latency_daily).

Kept free of Streamlit so every number on a page is tested without a browser; the pages
(`dashboards/views/`) only lay these results out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from alarms.rules import RANGE_DAYS, Period, forecast, period_of
from analytics.latency_daily import read_latency_daily
from analytics.spend_daily import read_spend_daily
from analytics.spend_monthly import read_spend_monthly
from analytics.usd import sum_usd
from dashboards.filters import Budget, in_scope
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


TOP_N = 5
OVERVIEW_DIMENSIONS: dict[str, str] = {"agents": "agent_id", "teams": "team", "models": "model", "projects": "project"}


def previous_range(since: dt.date, until: dt.date) -> tuple[dt.date, dt.date]:
    """The range of the same length just before `since..until` (the change's baseline)."""
    days = (until - since).days + 1
    return since - dt.timedelta(days=days), since - dt.timedelta(days=1)


def answered(daily: pl.DataFrame) -> pl.DataFrame:
    """Mart rows some model answered (a row without a provider holds failed or refused requests,
    kept under the alias they asked for; they are not a model's)."""
    return daily.filter(pl.col("provider").is_not_null())


def top_changes(current: pl.DataFrame, previous: pl.DataFrame, column: str, n: int = TOP_N) -> pl.DataFrame:
    """The `n` dearest values of `column` in `current`, with their spend in `previous` and the
    change (absolute, and relative where the previous spend was not zero)."""
    if column in ("model", "provider"):
        current, previous = answered(current), answered(previous)
    now = current.group_by(column).agg(sum_usd("cost_usd")).sort(["cost_usd", column], descending=[True, False])
    before = previous.group_by(column).agg(sum_usd("cost_usd").alias("previous_usd"))
    top = now.head(n).join(before, on=column, how="left", nulls_equal=True).fill_null(0.0)
    return top.with_columns(
        (pl.col("cost_usd") - pl.col("previous_usd")).alias("change_usd"),
        pl.when(pl.col("previous_usd") > 0)
        .then(pl.col("cost_usd") / pl.col("previous_usd") - 1)
        .otherwise(None)
        .alias("change_pct"),
    ).with_columns(pl.col(column).fill_null("(none)"))


@dataclass(frozen=True)
class Outlook:
    """A period's spend so far and its run-rate forecast with range (alarms/rules.py)."""

    first: dt.date
    last: dt.date
    spent: float
    forecast: float
    low: float
    high: float


def outlook(daily: pl.DataFrame, period: Period, now: dt.datetime) -> Outlook:
    """Spend of `daily` (mart rows) over `period` up to now, and its forecast: the alarms'
    method, so the page and the alarm agree (recent days: the `RANGE_DAYS` before today)."""
    today = now.astimezone(period.start.tzinfo).date()
    spent_so_far = spent(daily.filter(pl.col("date").is_between(period.first_day, today)))
    per_day = dict(daily.group_by("date").agg(sum_usd("cost_usd")).iter_rows())
    recent = [per_day.get(today - dt.timedelta(days=k), 0.0) for k in range(1, RANGE_DAYS + 1)]
    projected = forecast(spent_so_far, period, now, recent)
    return Outlook(period.first_day, period.last_day, spent_so_far, projected.projected, projected.low, projected.high)


def outlook_window(period: Period, today: dt.date) -> tuple[dt.date, dt.date]:
    """The mart days `outlook` needs: the recent days before today and the period itself."""
    return min(period.first_day, today - dt.timedelta(days=RANGE_DAYS)), max(period.last_day, today)


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period: Period
    outlook: Outlook

    @property
    def percent(self) -> float:
        return 100 * self.outlook.spent / self.budget.amount_usd

    @property
    def crossed(self) -> list[float]:
        return [t for t in sorted(self.budget.thresholds) if self.percent >= t]


def budget_status(rows: pl.DataFrame, budget: Budget, now: dt.datetime, timezone: str) -> BudgetStatus:
    """`budget`'s current period, spend and forecast from mart rows covering `outlook_window`:
    the alarm engine's scope, period and forecast, so the page shows what the alarms evaluate."""
    period = period_of(now, "day" if budget.period == "day" else "month", timezone)
    return BudgetStatus(budget, period, outlook(in_scope(rows, budget.scope), period, now))


def burn_down(daily: pl.DataFrame, first: dt.date, today: dt.date, amount_usd: float) -> pl.DataFrame:
    """Per day of the period through `today`: cumulative spend and the budget left."""
    days = pl.DataFrame({"date": pl.date_range(first, today, eager=True)})
    per_day = daily.filter(pl.col("date").is_between(first, today)).group_by("date").agg(sum_usd("cost_usd"))
    joined = days.join(per_day, on="date", how="left").fill_null(0.0).sort("date")
    return joined.with_columns(pl.col("cost_usd").cum_sum().alias("spent_usd")).with_columns(
        (amount_usd - pl.col("spent_usd")).alias("left_usd")
    )
