"""Meterline's dashboard: finance's pages (Overview, Spend explorer, Budgets and alarms,
Requests) and the engineers' Traces page, behind one login, filtered from one sidebar.

Run with `meterline dashboard` (or `streamlit run dashboards/app.py`). The data directory comes
from `METERLINE_DATA_DIR` (default ./data; with an S3 ledger, `meterline dashboard` passes
`storage.local_dir`, where analytics writes the marts), the time zone from `METERLINE_TIMEZONE`,
the budgets (without channels) from `METERLINE_BUDGETS` (dashboards/filters.py), the login from
dashboards/access.py. An alarm's link (`/?scope=...&budget=...&period=...`) opens the Overview on
its scope and period. The pages read the marts, the ledger's attribution, token, cost and status
columns and the alarm state: never a key, a prompt or a webhook.

Layout: nav.py (pages and URL paths), shell.py (sidebar filters <-> URL), data.py (cached reads),
queries.py and ledger.py (the numbers, plain functions), alarm_log.py, views/ (one module a page).
"""

from __future__ import annotations

import streamlit as st

from dashboards import access, nav, shell


def render_page() -> None:
    st.set_page_config(page_title="Meterline", layout="wide", menu_items={})
    if not access.gate():
        return
    shell.sidebar()
    st.navigation(list(nav.pages().values())).run()


# Streamlit runs this file as __main__; a plain import (tests, tooling) renders nothing.
if __name__ == "__main__":
    render_page()
