"""What the page is filtered to: the alarm link's query parameters, the configured time zone
and the budgets, turned into plain values (no Streamlit here, so every rule is unit-tested).

An alarm links to `{dashboard_url}/?scope=team:support&budget=support-monthly&period=2026-11`
(alarms/message.py); the page opens on that scope and period. A parameter that cannot be used
is reported and ignored, never an error page.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

TIMEZONE_ENV = "METERLINE_TIMEZONE"
BUDGETS_ENV = "METERLINE_BUDGETS"
"""JSON list of {name, scope, period, amount_usd}: what `meterline dashboard` passes from the
config. Only these fields: never a channel, a webhook or a secret."""

SCOPE_COLUMNS: dict[str, str] = {"agent": "agent_id", "team": "team", "project": "project", "model": "model"}


@dataclass(frozen=True)
class Budget:
    name: str
    scope: dict[str, str]
    period: str
    amount_usd: float


@dataclass(frozen=True)
class View:
    """The page's filters after reading the link."""

    scope: dict[str, str] = field(default_factory=dict)
    since: dt.date | None = None
    until: dt.date | None = None
    budget: Budget | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def scope_label(self) -> str:
        return ",".join(f"{key}:{value}" for key, value in sorted(self.scope.items())) or "total"


def timezone_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The configured zone (`meterline dashboard` passes it); UTC when unset or unknown."""
    name = environ.get(TIMEZONE_ENV, "UTC") or "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def local_today(timezone: str, now: dt.datetime | None = None) -> dt.date:
    """Today in the configured zone: the marts' days are local days."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(zoneinfo.ZoneInfo(timezone)).date()


def budgets_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Budget]:
    try:
        raw = json.loads(environ.get(BUDGETS_ENV, "[]") or "[]")
        return {
            b["name"]: Budget(str(b["name"]), dict(b.get("scope") or {}), str(b["period"]), float(b["amount_usd"]))
            for b in raw
        }
    except (ValueError, KeyError, TypeError):
        return {}


def budgets_env_value(budgets: list[Mapping[str, object]]) -> str:
    """The `METERLINE_BUDGETS` value for config budgets: only name, scope, period, amount."""
    keep = ("name", "scope", "period", "amount_usd")
    return json.dumps([{key: budget[key] for key in keep} for budget in budgets], sort_keys=True)


def parse_scope(text: str) -> dict[str, str]:
    """`total`, `team:support` or `agent:a,team:t` (the alarm's scope label) as a dict."""
    text = text.strip()
    if text in ("", "total"):
        return {}
    scope: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition(":")
        if not sep or key.strip() not in SCOPE_COLUMNS or not value.strip():
            raise ValueError(
                f"scope {text!r}: expected total or kind:value with kind one of {', '.join(SCOPE_COLUMNS)}"
            )
        scope[key.strip()] = value.strip()
    return scope


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    """`2026-11` (a month) or `2026-11-14` (a day) as its first and last local day."""
    text = text.strip()
    try:
        if len(text) == 7:
            first = dt.date.fromisoformat(f"{text}-01")
            following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return first, following - dt.timedelta(days=1)
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"period {text!r}: expected a month (2026-11) or a day (2026-11-14)") from None
    return day, day


def month_start(day: dt.date, months: int = 0) -> dt.date:
    """The first day of `day`'s month moved by `months` (negative: earlier)."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def view_from_link(params: Mapping[str, str], budgets: Mapping[str, Budget]) -> View:
    """The filters an alarm link asks for. A named budget supplies its own scope; an explicit
    `scope` parameter wins over it."""
    problems: list[str] = []
    budget: Budget | None = None
    scope: dict[str, str] = {}
    since = until = None
    if name := params.get("budget"):
        budget = budgets.get(name)
        if budget is None:
            problems.append(f"budget {name!r} is not in the configuration")
        else:
            scope = dict(budget.scope)
    if "scope" in params:
        try:
            scope = parse_scope(params["scope"])
        except ValueError as exc:
            problems.append(str(exc))
    if period := params.get("period"):
        try:
            since, until = parse_period(period)
        except ValueError as exc:
            problems.append(str(exc))
    return View(scope, since, until, budget, problems)


def in_scope(frame: pl.DataFrame, scope: Mapping[str, str]) -> pl.DataFrame:
    for key, value in scope.items():
        frame = frame.filter(pl.col(SCOPE_COLUMNS[key]) == value)
    return frame
