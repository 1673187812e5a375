"""`meterline up` on the embedded defaults: a request shows in `meterline spend`, Ctrl-C stops
everything cleanly, and a second `up` keeps the data."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from meterline.defaults import DEMO_KEYS
from tests.conftest import free_port
from tests.e2e.processes import cli, meterline_env, stop, wait_http_ok

pytestmark = pytest.mark.e2e


def spend_total(data_dir: Path, cwd: Path) -> int:
    report = json.loads(cli(["--data-dir", str(data_dir), "spend", "--format", "json"], cwd, meterline_env()))
    requests: int = report["total"]["requests"]
    return requests


def wait_for_requests(data_dir: Path, cwd: Path, expected: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (seen := spend_total(data_dir, cwd)) != expected:
        assert time.monotonic() < deadline, f"spend shows {seen} requests, expected {expected}"
        time.sleep(0.5)


def run_up(
    tmp_path: Path, data_dir: Path, ports: dict[str, int], dashboard: bool, stderr: int | None = None
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "meterline", "--data-dir", str(data_dir), "up",
        "--gateway-port", str(ports["gateway"]), "--collector-port", str(ports["collector"]),
        "--dashboard-port", str(ports["dashboard"]), "--analytics-interval", "1",
    ]  # fmt: skip
    if not dashboard:
        args.append("--no-dashboard")
    return subprocess.Popen(args, cwd=tmp_path, env=meterline_env(), stdout=subprocess.PIPE, stderr=stderr)


def ask(gateway_port: int) -> None:
    with openai.OpenAI(base_url=f"http://127.0.0.1:{gateway_port}/v1", api_key=DEMO_KEYS["support-bot"]) as client:
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hello"}])


def test_up_serves_meters_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {"gateway": free_port(), "collector": free_port(), "dashboard": free_port()}

    first = run_up(tmp_path, data_dir, ports, dashboard=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{ports['gateway']}/health/readiness", first)
        wait_http_ok(f"http://127.0.0.1:{ports['dashboard']}/_stcore/health", first)
        ask(ports["gateway"])
        wait_for_requests(data_dir, tmp_path, 1)
    finally:
        assert stop(first, signal.SIGINT, timeout_s=90) == 0
    assert first.stdout is not None
    with first.stdout:
        banner = first.stdout.read().decode()  # EOF only once every child has exited
    assert DEMO_KEYS["support-bot"] in banner and DEMO_KEYS["research-agent"] in banner
    # The last line says what was flushed, from the children's exit logs and the ledger.
    last = banner.strip().splitlines()[-1]
    assert last.startswith("meterline up: stopped; gateway delivered every usage record; "), last
    assert "collector wrote 1 usage records to the ledger (1 in all); analytics' last run: spend_daily=1 rows" in last
    for port in ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)

    second = run_up(tmp_path, data_dir, ports, dashboard=False)
    try:
        wait_http_ok(f"http://127.0.0.1:{ports['gateway']}/health/readiness", second)
        assert spend_total(data_dir, tmp_path) == 1
        ask(ports["gateway"])
        wait_for_requests(data_dir, tmp_path, 2)
    finally:
        assert stop(second, signal.SIGINT, timeout_s=90) == 0
        assert second.stdout is not None
        with second.stdout:
            last = second.stdout.read().decode().strip().splitlines()[-1]
    assert "collector wrote 1 usage records to the ledger (2 in all)" in last


def test_a_child_that_fails_at_startup_has_its_cause_as_the_last_line(tmp_path: Path) -> None:
    ports = {"gateway": free_port(), "collector": free_port(), "dashboard": free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["gateway"]))
        taken.listen()
        up = run_up(tmp_path, tmp_path / "data", ports, dashboard=False, stderr=subprocess.PIPE)
        _out, err = up.communicate(timeout=120)

    assert up.returncode == 1
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("meterline up: gateway exited with code 3 during startup: [Errno 98] "), last
    assert last.endswith(f"('127.0.0.1', {ports['gateway']}): address already in use")
