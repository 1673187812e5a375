"""Budgets and alarms: each budget's period, spend, forecast and thresholds, and the alarms it
fired with their deliveries per channel (read from the alarm state, never written)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from alarms.rules import period_of
from dashboards import alarm_log, data, queries
from dashboards.shell import context
from dashboards.views.common import day_filters, requests_link, table


def render() -> None:
    ctx = context()
    st.title("Budgets and alarms")
    st.caption(f"Periods in {ctx.timezone}. Money in USD. Each budget over its own scope.")
    if not ctx.budgets:
        st.info("No budgets configured (`budgets:` in meterline.yaml).")
        return
    rows = []
    for budget in ctx.budgets.values():
        period = period_of(ctx.now, "day" if budget.period == "day" else "month", ctx.timezone)
        first, last = queries.outlook_window(period, ctx.today)
        status = queries.budget_status(data.spend(first, last), budget, ctx.now, ctx.timezone)
        o = status.outlook
        rows.append(
            {
                "budget": budget.name,
                "scope": ", ".join(f"{k}:{v}" for k, v in sorted(budget.scope.items())) or "total",
                "period": period.key,
                "spent_usd": o.spent,
                "amount_usd": budget.amount_usd,
                "used_rate": o.spent / budget.amount_usd,
                "forecast_usd": o.forecast,
                "forecast_low_usd": o.low,
                "forecast_high_usd": o.high,
                "thresholds": ", ".join(f"{t:g}%" for t in budget.thresholds),
                "crossed": ", ".join(f"{t:g}%" for t in status.crossed),
            }
        )
    selected = ctx.filters.budget.name if ctx.filters.budget else None
    if selected:
        st.info(f"Opened from an alarm for budget {selected}.")
    table(pl.DataFrame(rows), "budgets")
    for budget in ctx.budgets.values():
        period = period_of(ctx.now, "day" if budget.period == "day" else "month", ctx.timezone)
        scoped = day_filters(ctx.filters, period.first_day, min(period.last_day, ctx.today)).replace(
            team=budget.scope.get("team"), agent=budget.scope.get("agent"), model=budget.scope.get("model"), tag=None
        )
        requests_link(scoped, f"Requests behind {budget.name} ({period.key})")

    alarms = alarm_log.alarm_rows(data.layout().root / "alarms.sqlite")
    st.subheader("Alarms by channel")
    if alarms.height == 0:
        st.info("No alarm has fired yet.")
        return
    table(alarm_log.by_channel(alarms), "alarms-by-channel")
    st.subheader("Every alarm")
    table(alarms.sort("created_at", descending=True), "alarms")


if __name__ == "__main__":
    render()
