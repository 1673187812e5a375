"""What the pages are filtered to: the URL's query parameters, the configured time zone and
the budgets, turned into plain values (no Streamlit here, so every rule is unit-tested).

The sidebar's filters live in the URL (`since`, `until`, `team`, `agent`, `model`, `tag=key:value`),
so a link opens the same view. An alarm links to
`{dashboard_url}/?scope=team:support&budget=support-monthly&period=2026-11` (alarms/message.py);
those parameters are read too and become the same filters. A parameter that cannot be used is
reported and ignored, never an error page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

TIMEZONE_ENV = "METERLINE_TIMEZONE"
BUDGETS_ENV = "METERLINE_BUDGETS"
LEDGER_URL_ENV = "METERLINE_LEDGER_URL"
"""An S3 ledger (`s3://bucket/prefix`), when the data dir is only the local state's; with
`METERLINE_S3_ENDPOINT_URL` and `METERLINE_S3_REGION` (storage.s3_endpoint_url, s3_region)."""
S3_ENDPOINT_ENV = "METERLINE_S3_ENDPOINT_URL"
S3_REGION_ENV = "METERLINE_S3_REGION"
"""JSON list of {name, scope, period, amount_usd}: what `meterline dashboard` passes from the
config. Only these fields: never a channel, a webhook or a secret."""

SCOPE_COLUMNS: dict[str, str] = {"agent": "agent_id", "team": "team", "project": "project", "model": "model"}


@dataclass(frozen=True)
class Budget:
    name: str
    scope: dict[str, str]
    period: str
    amount_usd: float
    thresholds: tuple[float, ...] = ()


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
            b["name"]: Budget(
                str(b["name"]),
                dict(b.get("scope") or {}),
                str(b["period"]),
                float(b["amount_usd"]),
                tuple(float(t) for t in b.get("thresholds") or ()),
            )
            for b in raw
        }
    except (ValueError, KeyError, TypeError):
        return {}


def budgets_env_value(budgets: list[Mapping[str, object]]) -> str:
    """The `METERLINE_BUDGETS` value for config budgets: only name, scope, period, amount and
    thresholds (never a channel)."""
    keep = ("name", "scope", "period", "amount_usd", "thresholds")
    return json.dumps([{key: budget[key] for key in keep if key in budget} for budget in budgets], sort_keys=True)


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


DEFAULT_RANGE_DAYS = 30
FILTER_PARAMS: tuple[str, ...] = ("since", "until", "team", "agent", "model", "tag")
"""The sidebar's filters, as they appear in the URL (every page reads them)."""
LINK_PARAMS: tuple[str, ...] = ("scope", "budget", "period")
"""An alarm link's parameters (alarms/message.py), read as filters."""


@dataclass(frozen=True)
class Filters:
    """The sidebar's filters: a local date range and at most one team, agent, model and tag.

    `model` means the model that answered: a request that failed or was refused before any
    provider answered has no model and never matches one (it is counted apart)."""

    since: dt.date
    until: dt.date
    team: str | None = None
    agent: str | None = None
    model: str | None = None
    tag: tuple[str, str] | None = None
    budget: Budget | None = None
    problems: tuple[str, ...] = ()

    @property
    def scope(self) -> dict[str, str]:
        """The team, agent and model filters as a budget-style scope (marts' dimensions)."""
        pairs = (("team", self.team), ("agent", self.agent), ("model", self.model))
        return {key: value for key, value in pairs if value}

    @property
    def label(self) -> str:
        parts = [f"{key}:{value}" for key, value in sorted(self.scope.items())]
        if self.tag:
            parts.append(f"tag {self.tag[0]}={self.tag[1]}")
        return ", ".join(parts) or "everything"

    def params(self) -> dict[str, str]:
        """The URL query parameters that reopen this view (budget kept, problems dropped)."""
        params = {"since": self.since.isoformat(), "until": self.until.isoformat(), **self.scope}
        if self.tag:
            params["tag"] = f"{self.tag[0]}:{self.tag[1]}"
        if self.budget:
            params["budget"] = self.budget.name
        return params

    def replace(self, **changes: object) -> Filters:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def default_range(today: dt.date) -> tuple[dt.date, dt.date]:
    return today - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), today


def parse_day(text: str, today: dt.date) -> dt.date:
    """A local day: an ISO date, or a time ago as the Traces page writes it (`24h`, `7d`:
    the day that time ago began in; hours round to whole days)."""
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in ("h", "d"):
        hours = int(text[:-1]) * (24 if text[-1] == "d" else 1)
        return today - dt.timedelta(days=hours // 24)
    return dt.date.fromisoformat(text)


def parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition(":")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"tag {text!r}: expected key:value (cost_center:cc-102)")
    return key.strip(), value.strip()


def filters_from_params(params: Mapping[str, str], budgets: Mapping[str, Budget], today: dt.date) -> Filters:
    """The filters a URL asks for. An alarm's `scope`/`budget`/`period` are read first; the
    sidebar's own parameters win over them."""
    view = view_from_link({key: params[key] for key in LINK_PARAMS if key in params}, budgets)
    problems = list(view.problems)
    since, until = (view.since, view.until) if view.since and view.until else default_range(today)
    scope = dict(view.scope)
    if "project" in scope:
        problems.append(f"scope project:{scope.pop('project')}: the sidebar filters by team, agent and model only")
    for key in ("since", "until"):
        if text := params.get(key):
            try:
                day = parse_day(text, today)
            except ValueError:
                problems.append(f"{key} {text!r}: expected a date (2026-11-14) or a time ago (24h, 7d)")
                continue
            since, until = (day, until) if key == "since" else (since, day)
    if since > until:
        problems.append(f"since {since.isoformat()} is after until {until.isoformat()}; showing the default range")
        since, until = default_range(today)
    for key in ("team", "agent", "model"):
        if value := (params.get(key) or "").strip():
            scope[key] = value
    tag = None
    if text := params.get("tag"):
        try:
            tag = parse_tag(text)
        except ValueError as exc:
            problems.append(str(exc))
    return Filters(
        since, until, scope.get("team"), scope.get("agent"), scope.get("model"), tag, view.budget, tuple(problems)
    )


def mart_rows(frame: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """`spend_daily`/`spend_monthly` rows within the filters' team, agent and model. A mart row
    without a provider holds requests no model answered, so a model filter never matches it."""
    if filters.team:
        frame = frame.filter(pl.col("team") == filters.team)
    if filters.agent:
        frame = frame.filter(pl.col("agent_id") == filters.agent)
    if filters.model:
        frame = frame.filter((pl.col("model") == filters.model) & pl.col("provider").is_not_null())
    return frame


def page_link(url_path: str, filters: Filters, **extra: str | None) -> str:
    """A relative link to `url_path` (a page of app.py's navigation) opened on `filters` plus
    the page's own parameters (`None` values left out): how a number opens its requests."""
    params = {**filters.params(), **{key: value for key, value in extra.items() if value is not None}}
    return f"{url_path}?{urllib.parse.urlencode(params)}"
