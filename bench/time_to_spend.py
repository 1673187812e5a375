"""How long from a completion to its row in `meterline spend` (and so on the dashboard).

Starts `meterline up --no-dashboard` on the embedded defaults in a temp dir, sends one
completion with the openai SDK, and polls `meterline spend --format json` until it shows.
Also reports startup time (until the gateway is ready) and the shutdown time after SIGINT.

    .venv/bin/python -m bench.time_to_spend [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _requests_in_spend(data_dir: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "meterline", "--data-dir", str(data_dir), "spend", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests: int = json.loads(out)["total"]["requests"]
    return requests


def one_run(interval: float) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        gateway, collector = _port(), _port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
        started = time.monotonic()
        up = subprocess.Popen(
            [sys.executable, "-m", "meterline", "--data-dir", str(data_dir), "up", "--no-dashboard",
             "--gateway-port", str(gateway), "--collector-port", str(collector),
             "--analytics-interval", str(interval)],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{gateway}/health/readiness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        ready = time.monotonic() - started
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{gateway}/v1", api_key="demo-key-support-bot")
        sent = time.monotonic()
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hello"}])
        while _requests_in_spend(data_dir) < 1:
            time.sleep(0.2)
        visible = time.monotonic() - sent
        stop_at = time.monotonic()
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        return ready, visible, time.monotonic() - stop_at


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--analytics-interval", type=float, default=5.0)
    args = parser.parse_args()
    results = [one_run(args.analytics_interval) for _ in range(args.runs)]
    for name, index in (("ready after start (s)", 0), ("completion -> spend (s)", 1), ("stop after SIGINT (s)", 2)):
        values = [r[index] for r in results]
        print(f"{name:<26} median {statistics.median(values):6.2f}  max {max(values):6.2f}  runs {len(values)}")


if __name__ == "__main__":
    main()
