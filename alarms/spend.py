"""What a budget's scope spent, read from the `spend_daily` mart (days in the configured zone)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from analytics.spend_daily import read_spend_daily
from analytics.usd import sum_usd
from meterline.layout import DataLayout

SCOPE_COLUMNS = {"team": "team", "project": "project", "agent": "agent_id", "model": "model"}


def scope_label(scope: dict[str, str]) -> str:
    """`total`, or `team:support` (several keys joined by `,`): the scope in messages and links."""
    return ",".join(f"{key}:{value}" for key, value in sorted(scope.items())) or "total"


def in_scope(frame: pl.DataFrame, scope: dict[str, str]) -> pl.DataFrame:
    for key, value in scope.items():
        frame = frame.filter(pl.col(SCOPE_COLUMNS[key]) == value)
    return frame


@dataclass(frozen=True)
class ScopeSpend:
    spent: float
    top_agents: list[tuple[str, float]]
    top_models: list[tuple[str, float]]
    daily: dict[dt.date, float]
    """Spend per day in scope over the window read (days without spend absent)."""
    by_agent_daily: dict[str, dict[dt.date, float]]


def scope_spend(layout: DataLayout, scope: dict[str, str], first: dt.date, last: dt.date, since: dt.date) -> ScopeSpend:
    """Spend of `scope` over `first..last`, its top three agents and models, and daily series
    from `since` (for the forecast range and the anomaly baseline)."""
    rows = in_scope(read_spend_daily(layout, min(first, since), last), scope)
    period = rows.filter(pl.col("date") >= first)
    spent = period.select(sum_usd("cost_usd")).item()
    return ScopeSpend(
        spent=spent or 0.0,
        top_agents=_top(period, "agent_id"),
        top_models=_top(period, "model"),
        daily=dict(_series(rows, ["date"]).iter_rows()),
        by_agent_daily=_by_agent(rows),
    )


def _top(frame: pl.DataFrame, column: str, n: int = 3) -> list[tuple[str, float]]:
    top = frame.group_by(column).agg(sum_usd("cost_usd")).sort(["cost_usd", column], descending=[True, False]).head(n)
    return [(str(name), cost) for name, cost in top.iter_rows()]


def _series(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.group_by(keys).agg(sum_usd("cost_usd")).sort(keys)


def _by_agent(frame: pl.DataFrame) -> dict[str, dict[dt.date, float]]:
    series: dict[str, dict[dt.date, float]] = {}
    for agent, day, cost in _series(frame, ["agent_id", "date"]).iter_rows():
        series.setdefault(agent, {})[day] = cost
    return series
