"""How long `make up` takes from a warm install until every component is ready.

Runs `meterline up` on the embedded defaults (a temp dir as cwd, so no meterline.yaml is read)
with free ports, and from the moment the process starts polls each component's health check:
the collector's `/health`, the gateway's `/health/readiness`, the dashboard's
`/_stcore/health`, and for analytics (no port) its first mart file. Also reports when the
banner ("Meterline is up.") reached stdout, and how long Ctrl-C (SIGINT) took to stop it all.

    .venv/bin/python -m bench.up_ready [--runs 3] [--no-dashboard]

"Warm install": the venv exists and its modules were imported once before (the OS page cache
holds them); the first run of a series is reported too, and is usually the slowest.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def one_run(dashboard: bool) -> dict[str, float]:
    """Seconds from spawning `meterline up` until each component first answered, plus
    `banner` and `stop` (SIGINT until exit)."""
    with tempfile.TemporaryDirectory() as tmp:
        ports = {"gateway": _port(), "collector": _port(), "dashboard": _port()}
        command = [
            sys.executable, "-m", "meterline", "up",
            "--gateway-port", str(ports["gateway"]), "--collector-port", str(ports["collector"]),
            "--collector-grpc-port", "0", "--dashboard-port", str(ports["dashboard"]),
        ]  # fmt: skip
        if not dashboard:
            command.append("--no-dashboard")
        env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
        checks: dict[str, Callable[[], bool]] = {
            "collector": lambda: _ok(f"http://127.0.0.1:{ports['collector']}/health"),
            "gateway": lambda: _ok(f"http://127.0.0.1:{ports['gateway']}/health/readiness"),
            "analytics": lambda: (Path(tmp) / "data" / "marts" / "spend_daily" / "data.parquet").exists(),
        }
        if dashboard:
            checks["dashboard"] = lambda: _ok(f"http://127.0.0.1:{ports['dashboard']}/_stcore/health")
        found: dict[str, float] = {}
        t0 = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )

        def read_banner() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith("Meterline is up."):
                    found["banner"] = time.perf_counter() - t0

        reader = threading.Thread(target=read_banner, daemon=True)
        reader.start()
        try:
            deadline = t0 + 120
            while len(found) < len(checks) + 1 and time.perf_counter() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"meterline up exited with {process.returncode}")
                for name, check in checks.items():
                    if name not in found and check():
                        found[name] = time.perf_counter() - t0
                time.sleep(0.05)
        finally:
            stop_at = time.perf_counter()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
            found["stop"] = time.perf_counter() - stop_at
            reader.join(timeout=5)
        found["all ready"] = max(v for k, v in found.items() if k not in ("stop", "banner"))
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-dashboard", action="store_true")
    args = parser.parse_args()
    runs = [one_run(not args.no_dashboard) for _ in range(args.runs)]
    names = [
        n for n in ("collector", "gateway", "analytics", "dashboard", "all ready", "banner", "stop") if n in runs[0]
    ]
    print(f"{'component':<10} " + " ".join(f"run {i + 1:<3}" for i in range(len(runs))) + "  median")
    for name in names:
        values = [r.get(name, float("nan")) for r in runs]
        cells = " ".join(f"{v:7.2f}" for v in values)
        print(f"{name:<10} {cells}  {statistics.median(values):6.2f} s")


if __name__ == "__main__":
    main()
