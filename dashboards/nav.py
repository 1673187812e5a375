"""The dashboard's pages and their URL paths: one place, so links between pages agree.

Each page is a script in `dashboards/views/` (Streamlit runs it as `__main__`; importing it
renders nothing). Finance's pages are here; the engineers' Traces page is
`dashboards/trace_page.py` (`render() -> None`), listed as soon as it exists. A Requests row
opens it with `?trace_id=...&request_id=...`.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import streamlit as st

OVERVIEW, EXPLORER, BUDGETS, REQUESTS, TRACES = "overview", "explorer", "budgets", "requests", "traces"
TRACE_PAGE_MODULE = "dashboards.trace_page"

VIEWS = Path(__file__).resolve().parent / "views"
_FINANCE: tuple[tuple[str, str], ...] = (
    (OVERVIEW, "Overview"),
    (EXPLORER, "Spend explorer"),
    (BUDGETS, "Budgets and alarms"),
    (REQUESTS, "Requests"),
)


def has_traces() -> bool:
    return importlib.util.find_spec(TRACE_PAGE_MODULE) is not None


@functools.cache
def pages() -> dict[str, st.Page]:
    """Every page by its url_path; the Overview is the default (the root URL, where alarm
    links land)."""
    listed = {
        path: st.Page(VIEWS / f"{path}.py", title=title, url_path=path, default=path == OVERVIEW)
        for path, title in _FINANCE
    }
    # The engineers' half (issue 15): the Traces page (views/traces.py runs
    # dashboards/trace_page.py's render()), listed once dashboards/trace_page.py exists.
    if has_traces():
        listed[TRACES] = st.Page(VIEWS / "traces.py", title="Traces", url_path=TRACES)
    return listed


def page(path: str) -> st.Page:
    return pages()[path]
