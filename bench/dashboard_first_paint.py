"""The Overview's first paint over a large generated ledger, in a real browser.

    .venv/bin/python -m bench.dashboard_first_paint --rows 10000000 [--days 30] [--runs 3] [--keep]

Writes `--rows` usage rows over `--days` UTC days ending today (bench/marts.py's generator: one
compacted part per day, 200 agents, 12 teams, 30 projects, 6 models), builds the marts once
(`analytics.jobs.run_once`, timed), then starts `meterline dashboard` as its own process and
loads the Overview in Debian's chromium (Playwright's Python API, `executable_path`), `--runs`
times. First paint: from `page.goto` to the Overview's headline numbers drawn (today, month to
date, forecast); whole page: until its last table is drawn and Streamlit's running indicator is
gone. The first load of a fresh server is "cold"
(page modules imported, caches empty); each later load opens a new browser context (a new
Streamlit session: the script runs again, the `st.cache_data` entries keyed on the mart's mtime
answer). The Overview reads only the marts (without a tag filter), so its cost follows the marts'
size (days x agents x teams x projects x models x providers), not the ledger's row count.
`--floor` also times a bare Streamlit page (a title and three metrics) the same way: what
Streamlit and the browser cost before the Overview reads anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.marts import write_day
from meterline.layout import DataLayout

CHROMIUM = "/usr/bin/chromium"


def generate(layout: DataLayout, rows: int, days: int) -> float:
    today = dt.datetime.now(dt.UTC).date()
    per_day = rows // days
    started = time.perf_counter()
    for n in range(days):
        write_day(layout, today - dt.timedelta(days=days - 1 - n), per_day, n, n * per_day)
    return time.perf_counter() - started


def build_marts(layout: DataLayout, timezone: str) -> float:
    from analytics.jobs import run_once

    started = time.perf_counter()
    run_once(layout, timezone)
    return time.perf_counter() - started


def _wait_health(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the dashboard exited before answering")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


FLOOR_APP = (
    'import streamlit as st\nst.title("Overview")\nfor n in "abc": st.metric(n, "$1")\nst.write("Top projects")\n'
)
"""The floor: a Streamlit page with a title and three metrics, nothing read, through the same harness."""


def first_paints(data_dir: Path, config: Path, port: int, runs: int, floor: bool = False) -> list[tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    if floor:
        script = data_dir.parent / "floor.py"
        script.write_text(FLOOR_APP)
        command = ["-m", "streamlit", "run", str(script), "--server.port", str(port), "--server.headless", "true",
                   "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]  # fmt: skip
    else:
        command = ["-m", "meterline", "--config", str(config), "--data-dir", str(data_dir), "dashboard",
                   "--port", str(port)]  # fmt: skip
    server = subprocess.Popen([sys.executable, *command], env=env, stdout=subprocess.DEVNULL)
    seconds: list[tuple[float, float]] = []
    try:
        _wait_health(f"http://127.0.0.1:{port}/_stcore/health", server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            returning = browser.new_context(viewport={"width": 1400, "height": 1000})
            for index in range(runs * 2):
                # Even loads: a new browser profile (nothing cached); odd: a returning browser
                # (Streamlit's JavaScript in the HTTP cache), each a new Streamlit session.
                fresh = index % 2 == 0
                context = browser.new_context(viewport={"width": 1400, "height": 1000}) if fresh else returning
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator('[data-testid="stMetricValue"]').nth(2).wait_for(timeout=120_000)
                numbers = time.perf_counter() - started
                page.get_by_text("Top projects").first.wait_for(timeout=120_000)
                page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)
                seconds.append((numbers, time.perf_counter() - started))
                page.close()
                if fresh:
                    context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return seconds


SCRIPT_RUN = """
import json, os, resource, sys, time
import streamlit as st
from streamlit.testing.v1 import AppTest
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
AppTest.from_file(sys.argv[1], default_timeout=120).run()  # AppTest's own first-use costs
for cold in (True, False, False):
    if cold:
        st.cache_data.clear()
    app = AppTest.from_file(sys.argv[1], default_timeout=120)
    c, t = cpu(), time.perf_counter()
    app.run()
    print(json.dumps({"cold": cold, "wall": time.perf_counter() - t, "cpu": cpu() - c}))
"""


def script_runs(data_dir: Path, timezone: str) -> list[dict[str, float]]:
    """The Overview's script alone (Streamlit's AppTest, no browser): wall and CPU seconds of a
    run with empty caches, then two with the marts' cache entries present."""
    app = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
    budget = [{"name": "total-monthly", "scope": {}, "period": "month", "amount_usd": 100_000, "thresholds": [50, 80]}]
    env = {**os.environ, "METERLINE_DATA_DIR": str(data_dir), "METERLINE_TIMEZONE": timezone,
           "METERLINE_BUDGETS": json.dumps(budget)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", SCRIPT_RUN, str(app)], env=env, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/meterline-bench-dashboard"))
    parser.add_argument("--timezone", default="Asia/Shanghai")
    parser.add_argument("--port", type=int, default=18531)
    parser.add_argument("--keep", action="store_true", help="reuse the ledger and marts already in --dir")
    parser.add_argument("--floor", action="store_true", help="also time a bare 3-metric Streamlit page")
    args = parser.parse_args()
    layout = DataLayout.at(args.dir / "data")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
        print(f"generated {args.rows:,} rows in {generate(layout, args.rows, args.days):.1f} s", flush=True)
        print(f"marts built in {build_marts(layout, args.timezone):.1f} s", flush=True)
    budget = {"name": "total-monthly", "scope": {}, "period": "month", "amount_usd": 100_000, "channels": []}
    config = args.dir / "meterline.yaml"
    config.write_text(json.dumps({"timezone": args.timezone, "budgets": [budget]}))
    mart = layout.mart_file("spend_daily")
    print(f"spend_daily: {mart.stat().st_size / 1e6:.1f} MB", flush=True)
    for run in script_runs(layout.root, args.timezone):
        caches = "empty caches" if run["cold"] else "warm caches"
        print(f"Overview script alone ({caches}): {run['wall']:.2f} s wall, {run['cpu']:.2f} s CPU", flush=True)
    for floor in (False, True) if args.floor else (False,):
        paints = first_paints(layout.root, config, args.port, args.runs, floor)
        load = Path("/proc/loadavg").read_text().split()[0]
        for index, (numbers, complete) in enumerate(paints):
            server = "first load of the server" if index == 0 else "server warm"
            browser = "new browser profile" if index % 2 == 0 else "returning browser"
            what = "floor (3 metrics, no data)" if floor else "Overview"
            print(f"{what}, {server}, {browser}: headline numbers {numbers:.2f} s, whole page {complete:.2f} s;"
                  f" load avg {load}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
