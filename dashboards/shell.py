"""What every page shares: the configured zone, today, the budgets and the sidebar's filters,
kept in the URL (`st.query_params`) so a link opens the same view."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import streamlit as st

from dashboards import data
from dashboards.filters import (
    FILTER_PARAMS,
    LINK_PARAMS,
    Budget,
    Filters,
    budgets_from_env,
    filters_from_params,
    parse_tag,
    timezone_from_env,
)

CONTEXT_KEY = "meterline.context"
LAST_FILTERS_KEY = "meterline.filters"
ALL = "(all)"


@dataclass(frozen=True)
class Context:
    timezone: str
    now: dt.datetime
    today: dt.date
    budgets: dict[str, Budget]
    filters: Filters


def context() -> Context:
    """The context `sidebar()` computed for this run (pages call this)."""
    found: Context = st.session_state[CONTEXT_KEY]
    return found


def sidebar(now: dt.datetime | None = None) -> Context:
    """Read the filters from the URL (or the last ones of this session when the URL has none,
    as after following the page menu), show them in the sidebar and write any change back."""
    timezone = timezone_from_env()
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(zoneinfo.ZoneInfo(timezone)).date()
    budgets = budgets_from_env()
    params = st.query_params.to_dict()
    if not any(key in params for key in (*FILTER_PARAMS, *LINK_PARAMS)):
        params = {**st.session_state.get(LAST_FILTERS_KEY, {}), **params}
    current = filters_from_params(params, budgets, today)
    chosen = _widgets(current, today, timezone)
    _write_url(current, chosen)
    st.session_state[LAST_FILTERS_KEY] = chosen.params()
    found = Context(timezone, now, today, budgets, chosen)
    st.session_state[CONTEXT_KEY] = found
    return found


def _widgets(current: Filters, today: dt.date, timezone: str) -> Filters:
    options = data.options(today)
    problems = list(current.problems)
    with st.sidebar:
        st.caption(f"Days and times in **{timezone}**; money in USD.")
        picked = st.date_input(
            f"Date range ({timezone})", value=(current.since, current.until), max_value=max(today, current.until)
        )
        since, until = _range(picked, current)
        team = _choice("Team", options["team"], current.team)
        agent = _choice("Agent", options["agent"], current.agent)
        model = _choice("Model", options["model"], current.model)
        tag_text = st.text_input(
            "Tag (key:value)",
            value=f"{current.tag[0]}:{current.tag[1]}" if current.tag else "",
            placeholder="key:value",
        )
        tag = current.tag
        if tag_text.strip() != (f"{current.tag[0]}:{current.tag[1]}" if current.tag else ""):
            try:
                tag = parse_tag(tag_text) if tag_text.strip() else None
            except ValueError as exc:
                problems.append(str(exc))
    for problem in problems:
        st.warning(f"Link parameter ignored: {problem}")
    return current.replace(since=since, until=until, team=team, agent=agent, model=model, tag=tag, problems=())


def _range(picked: object, current: Filters) -> tuple[dt.date, dt.date]:
    # While a range is half-picked the widget returns one date (or a 1-tuple).
    if isinstance(picked, dt.date):
        return picked, picked
    if isinstance(picked, tuple) and len(picked) == 2:
        return picked[0], picked[1]
    if isinstance(picked, tuple) and len(picked) == 1:
        return picked[0], picked[0]
    return current.since, current.until


def _choice(label: str, options: list[str], value: str | None) -> str | None:
    choices = [ALL, *options, *([value] if value and value not in options else [])]
    picked = st.selectbox(label, choices, index=choices.index(value) if value else 0)
    return None if picked in (None, ALL) else str(picked)


def _write_url(before: Filters, chosen: Filters) -> None:
    """Make the URL say `chosen` (an alarm's scope and period become the sidebar's parameters);
    a change of filters goes back to the first page of results."""
    wanted = chosen.params()
    for key in (*FILTER_PARAMS, *LINK_PARAMS):
        if key in st.query_params and key not in wanted:
            del st.query_params[key]
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    if before.params() != wanted and "page" in st.query_params:
        del st.query_params["page"]
