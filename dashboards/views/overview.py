"""Overview: today, month to date and the month's forecast; every budget against its spend;
the top agents, teams, models and projects of the range with their change."""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from alarms.rules import period_of
from dashboards import alarm_log, data, nav, queries
from dashboards.filters import Filters, in_scope, mart_rows, page_link
from dashboards.shell import Context, context
from dashboards.views.common import caption, day_filters, money, requests_link, table


def spend_rows(ctx: Context, since: dt.date, until: dt.date) -> pl.DataFrame:
    """`spend_daily` rows for the filters over `since..until`; from the ledger when a tag filter
    asks for more than the mart holds."""
    filters = ctx.filters.replace(since=since, until=until)
    if filters.tag:
        return data.daily_from_ledger(ctx.timezone, filters)
    return mart_rows(data.spend(since, until), filters)


def render() -> None:
    ctx = context()
    st.title("Overview")
    caption(ctx.filters, ctx.timezone)
    month = period_of(ctx.now, "month", ctx.timezone)
    first, last = queries.outlook_window(month, ctx.today)
    window = spend_rows(ctx, first, last)
    outlook = queries.outlook(window, month, ctx.now)
    today = queries.spent(window.filter(pl.col("date") == ctx.today))

    cells = st.columns(3)
    with cells[0]:
        st.metric(f"Spend today ({ctx.today.isoformat()})", money(today))
        requests_link(day_filters(ctx.filters, ctx.today, ctx.today), "Requests today")
    with cells[1]:
        st.metric(f"Month to date ({month.key})", money(outlook.spent))
        requests_link(day_filters(ctx.filters, month.first_day, ctx.today), "Requests this month")
    with cells[2]:
        st.metric(
            f"Forecast for {month.key}",
            money(outlook.forecast),
            help="Run rate: spent so far / elapsed fraction of the month. Range: spent + the lowest "
            "and highest daily spend of the last 7 full days x the days left.",
        )
        st.caption(f"Range {money(outlook.low)} to {money(outlook.high)}")

    _budgets(ctx, month.key)
    _top(ctx)


def _budgets(ctx: Context, month_key: str) -> None:
    st.subheader("Budgets")
    if not ctx.budgets:
        st.info("No budgets configured (`budgets:` in meterline.yaml).")
        return
    st.caption("Each budget over its own scope and current period, whatever the sidebar's filters.")
    alarms = alarm_log.alarm_rows(data.layout().root / "alarms.sqlite")
    for budget in ctx.budgets.values():
        period = period_of(ctx.now, "day" if budget.period == "day" else "month", ctx.timezone)
        first, last = queries.outlook_window(period, ctx.today)
        status = queries.budget_status(data.spend(first, last), budget, ctx.now, ctx.timezone)
        o = status.outlook
        fired = alarm_log.fired(alarms, budget.name, period.key)
        scope = ", ".join(f"{k}:{v}" for k, v in sorted(budget.scope.items())) or "total"
        left, right = st.columns([2, 3])
        with left:
            st.metric(
                f"{budget.name} ({scope}, {period.key})",
                f"{money(o.spent)} of {money(budget.amount_usd)}",
                f"{status.percent:.1f}%",
                delta_color="off",
                delta_arrow="off",
            )
            st.caption(f"Forecast {money(o.forecast)} (range {money(o.low)} to {money(o.high)})")
            marks = [f"{t:g}%" + (" crossed" if t in status.crossed else "") for t in budget.thresholds]
            st.caption("Thresholds: " + (", ".join(marks) or "none"))
            st.caption("Fired: " + (", ".join(fired) or "nothing yet"))
        with right:
            _burn_down(status, ctx.today)


def _burn_down(status: queries.BudgetStatus, today: dt.date) -> None:
    budget, o = status.budget, status.outlook
    rows = data.spend(o.first, min(today, o.last))
    line = queries.burn_down(in_scope(rows, budget.scope), o.first, min(today, o.last), budget.amount_usd)
    frame = line.with_columns(pl.col("date").cast(pl.String)).to_pandas()
    spent = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("date:O", title="day", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("spent_usd:Q", title="spent (USD)", axis=alt.Axis(format="$,.2f")),
            tooltip=["date", alt.Tooltip("spent_usd:Q", format="$,.6f"), alt.Tooltip("left_usd:Q", format="$,.6f")],
        )
    )
    marks = [{"label": "budget", "usd": budget.amount_usd}] + [
        {"label": f"{t:g}%", "usd": budget.amount_usd * t / 100} for t in budget.thresholds if t != 100
    ]
    rules = alt.Chart(pl.DataFrame(marks).to_pandas()).mark_rule(strokeDash=[4, 4]).encode(y="usd:Q", color="label:N")
    st.altair_chart(spent + rules, width="stretch")


def _top(ctx: Context) -> None:
    f = ctx.filters
    before = queries.previous_range(f.since, f.until)
    current = spend_rows(ctx, f.since, f.until)
    previous = spend_rows(ctx, *before)
    st.subheader(f"Top spenders, {f.since.isoformat()} to {f.until.isoformat()}")
    total = queries.spent(current)
    st.metric(f"Spend in range ({f.since.isoformat()} to {f.until.isoformat()})", money(total))
    requests_link(f, "Requests in range")
    st.caption(
        f"Change against the {((f.until - f.since).days + 1)} days before "
        f"({before[0].isoformat()} to {before[1].isoformat()}). Requests no model answered are not a model's: "
        "see the Spend explorer's errors and refusals."
    )
    columns = st.columns(2)
    for index, (title, column) in enumerate(queries.OVERVIEW_DIMENSIONS.items()):
        with columns[index % 2]:
            st.markdown(f"**Top {title}**")
            name = title[:-1]
            top = queries.top_changes(current, previous, column).rename({column: name})
            links = [_requests_of(f, name, value) for value in top[name].to_list()]
            table(
                top.with_columns(pl.Series("requests", links, dtype=pl.String)),
                f"top-{title}",
                {"requests": st.column_config.LinkColumn("requests", display_text="open", width="small")},
            )


def _requests_of(f: Filters, dimension: str, value: str) -> str:
    """The Requests page on one top row's requests (projects are no sidebar filter: the range's)."""
    url = nav.page(nav.REQUESTS).url_path
    if dimension in ("agent", "team", "model") and value != "(none)":
        return page_link(url, f.replace(**{dimension: value}))
    return page_link(url, f)


if __name__ == "__main__":
    render()
