"""The Traces page: the engineers' half of the dashboard lives in dashboards/trace_page.py
(issue 15); this script is its entry in the navigation (nav.py lists it once that module exists).
It reads the sidebar's filters from `st.query_params`, and a Requests row opens it with
`?trace_id=...&request_id=...`."""

from __future__ import annotations

import importlib

if __name__ == "__main__":
    importlib.import_module("dashboards.trace_page").render()
