"""The dashboard in a real browser: `meterline dashboard` as its own process, Debian's chromium
driven by Playwright's Python API (`executable_path`; nothing downloads a browser).

Checks the Overview's numbers against DuckDB SQL over the ledger, a filter change reaching the
URL and the numbers, a number followed to its requests, a request followed to its trace, and
that a viewer sees no Deploy button or developer menu. Saves a screenshot of each page (under
`METERLINE_TEST_SCREENSHOTS_DIR` when set: `docs/screenshots/` for README's pictures). Without
/usr/bin/chromium it skips with the reason, except under CI (CI=true), where it fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.filters import local_today
from dashboards.queries import format_usd
from meterline.layout import DataLayout
from tests.conftest import free_port
from tests.dashboards.conftest import BUDGET, build_ledger, sql, usd
from tests.e2e.processes import meterline_env, meterline_process

CHROMIUM = Path("/usr/bin/chromium")
TIMEZONE = "Asia/Shanghai"
SCREENSHOTS_ENV = "METERLINE_TEST_SCREENSHOTS_DIR"
WAIT_MS = 60_000


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is absent (Debian's chromium package: apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI requires it")
    pytest.skip(message)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, DataLayout]]:
    _require_chromium()
    layout = DataLayout.at(tmp_path / "data")
    build_ledger(layout, TIMEZONE)
    config = tmp_path / "meterline.yaml"
    config.write_text(json.dumps({"timezone": TIMEZONE, "budgets": [{**BUDGET, "channels": []}]}))
    port = free_port()
    args = ["--config", str(config), "--data-dir", str(layout.root), "dashboard", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with meterline_process(args, tmp_path, meterline_env(), f"{base}/_stcore/health"):
        yield base, layout


@pytest.fixture
def page(dashboard: tuple[str, DataLayout]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def _metrics(page: Any) -> dict[str, str]:
    page.wait_for_timeout(500)
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    return {label.strip(): value.strip() for label, value in zip(labels, values, strict=True)}


def _settled(page: Any, title: str) -> None:
    """Wait for `title`'s page to be drawn and the script to finish running."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=WAIT_MS)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT_MS)
    page.wait_for_timeout(800)


def _shot(page: Any, name: str, tmp: Path) -> None:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_overview_filters_requests_and_trace_in_a_browser(
    dashboard: tuple[str, DataLayout], page: Any, tmp_path: Path
) -> None:
    base, layout = dashboard
    today = local_today(TIMEZONE)
    since = today - dt.timedelta(days=29)
    in_range = f"local_date BETWEEN '{since}' AND '{today}'"

    def spent(where: str) -> str:
        return format_usd(usd(sql(layout, f"SELECT sum(cost) FROM usage WHERE {where}", TIMEZONE)[0][0]))

    page.goto(base)
    _settled(page, "Overview")
    shown = _metrics(page)
    assert shown[f"Spend today ({today.isoformat()})"] == spent(f"local_date = '{today}'")
    assert shown[f"Month to date ({today:%Y-%m})"] == spent(f"local_date >= '{today.replace(day=1)}'")
    assert shown[f"Spend in range ({since.isoformat()} to {today.isoformat()})"] == spent(in_range)
    assert page.get_by_text(f"days in {TIMEZONE}").first.is_visible()
    # A viewer's chrome: no Deploy button, no developer menu.
    assert page.get_by_role("button", name="Deploy").count() == 0
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    page.locator('[data-testid="stMainMenu"]').click()
    menu = page.locator('[data-testid="stMainMenuPopover"]').inner_text()
    assert "Clear cache" not in menu and "Deploy" not in menu and "Developer" not in menu, menu
    page.keyboard.press("Escape")
    _shot(page, "overview", tmp_path)

    # A filter change: the agent picked in the sidebar lands in the URL and in the numbers.
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option", name="research-agent").click()
    page.wait_for_url(re.compile(r"agent=research-agent"), timeout=WAIT_MS)
    _settled(page, "Overview")
    label = f"Spend in range ({since.isoformat()} to {today.isoformat()})"
    assert _metrics(page)[label] == spent(f"agent_id = 'research-agent' AND {in_range}")

    # A number opens the requests behind it.
    page.get_by_role("link", name="Requests in range").click()
    page.wait_for_url(re.compile(r"/requests\?.*agent=research-agent"), timeout=WAIT_MS)
    _settled(page, "Requests")
    count = sql(layout, f"SELECT count(*) FROM usage WHERE agent_id = 'research-agent' AND {in_range}", TIMEZONE)
    assert page.get_by_text(re.compile(rf"^{count[0][0]:,} requests, newest first")).count() == 1
    _shot(page, "requests", tmp_path)

    # A request opens its trace.
    newest = sql(
        layout,
        f"SELECT request_id, trace_id FROM usage WHERE agent_id = 'research-agent' AND {in_range}"
        " ORDER BY ts_start DESC, request_id DESC LIMIT 1",
        TIMEZONE,
    )[0]
    page.get_by_role("link", name=f"Open trace {newest[1]}").click()
    page.wait_for_url(re.compile(rf"/traces\?.*trace_id={newest[1]}"), timeout=WAIT_MS)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT_MS)
    page.wait_for_timeout(1500)
    assert newest[1] in page.locator('[data-testid="stMain"]').inner_text()
    _shot(page, "traces", tmp_path)

    for path, title, name in (("explorer", "Spend explorer", "explorer"), ("budgets", "Budgets and alarms", "budgets")):
        page.goto(f"{base}/{path}?since={since.isoformat()}&until={today.isoformat()}")
        _settled(page, title)
        _shot(page, name, tmp_path)
