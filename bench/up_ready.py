"""How long `make up` takes from a warm install until every component is ready.

Runs `meterline up` on the embedded defaults (a temp dir as cwd, so no meterline.yaml is read)
with free ports, and from the moment the process starts polls each component's health check:
the collector's `/health`, the gateway's `/health/readiness`, the dashboard's
`/_stcore/health`, and for analytics (no port) its first mart file. Also reports when the
banner ("Meterline is up.") reached stdout, and how long Ctrl-C (SIGINT) took to stop it all.

    .venv/bin/python -m bench.up_ready [--runs 3] [--no-dashboard] [--alone]

Each run also reports the CPU seconds (user + sys) of the whole `up` process tree from start to
stop, which a loaded machine inflates far less than wall time. `--alone` first times each
component started by itself (`meterline collector|gateway|dashboard`, `analytics run`): wall
seconds to its health check and CPU seconds up to then (it is stopped at once), which is what
`up` pays for it and what a parallel start overlaps. `--against FILE` alternates each run
with one whose supervisor is FILE, another version of meterline/cli/up.py (A/B on one load):

    git show b521856:meterline/cli/up.py > /tmp/up_sequential.py
    .venv/bin/python -m bench.up_ready --runs 3 --against /tmp/up_sequential.py

"Warm install": the venv exists and its modules were imported once before (the OS page cache
holds them); the first run of a series is reported too, and is usually the slowest.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def alone(component: str) -> tuple[float, float]:
    """(wall seconds to ready, CPU seconds until stopped right after) of one component."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # as `meterline up` sets it for its children
        base = [sys.executable, "-m", "meterline", "--data-dir", str(Path(tmp) / "data")]
        (Path(tmp) / "data").mkdir()
        verbs = {
            "collector": (["collector", "--port", str(port), "--grpc-port", "0"], f"http://127.0.0.1:{port}/health"),
            "gateway": (["gateway", "--port", str(port)], f"http://127.0.0.1:{port}/health/readiness"),
            "dashboard": (["dashboard", "--port", str(port)], f"http://127.0.0.1:{port}/_stcore/health"),
            "analytics": (["analytics", "run"], None),
        }
        verb, url = verbs[component]
        cpu0, t0 = _cpu_of_children(), time.perf_counter()
        process = subprocess.Popen(
            [*base, *verb], cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if url is None:
            process.wait(timeout=120)
        else:
            while not _ok(url):
                if process.poll() is not None:
                    raise RuntimeError(f"{component} exited with {process.returncode}")
                time.sleep(0.05)
        wall = time.perf_counter() - t0
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        return wall, _cpu_of_children() - cpu0


_WITH_SUPERVISOR = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("meterline.cli.up", sys.argv.pop(1))
module = importlib.util.module_from_spec(spec)
sys.modules["meterline.cli.up"] = module
spec.loader.exec_module(module)
from meterline.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def one_run(dashboard: bool, supervisor: str | None = None) -> dict[str, float]:
    """Seconds from spawning `meterline up` until each component first answered, plus
    `banner` and `stop` (SIGINT until exit)."""
    with tempfile.TemporaryDirectory() as tmp:
        ports = {"gateway": _port(), "collector": _port(), "dashboard": _port()}
        command = [
            sys.executable, *(("-c", _WITH_SUPERVISOR, supervisor) if supervisor else ("-m", "meterline")), "up",
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
        cpu0, t0 = _cpu_of_children(), time.perf_counter()
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
            found["cpu"] = _cpu_of_children() - cpu0
        found["all ready"] = max(v for k, v in found.items() if k not in ("stop", "banner", "cpu"))
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--alone", action="store_true", help="first time each component by itself")
    parser.add_argument("--against", default=None, metavar="FILE", help="alternate with this up.py (A/B)")
    args = parser.parse_args()
    if args.alone:
        print(f"{'alone':<10} {'wall s':>7} {'cpu s':>7}")
        for component in ("collector", "gateway", "dashboard", "analytics"):
            wall, cpu = alone(component)
            print(f"{component:<10} {wall:7.2f} {cpu:7.2f}")
    runs, others = [], []
    for _ in range(args.runs):
        runs.append(one_run(not args.no_dashboard))
        if args.against:
            others.append(one_run(not args.no_dashboard, args.against))
    report(runs)
    if others:
        print(f"against {args.against}:")
        report(others)


def report(runs: list[dict[str, float]]) -> None:
    names = [
        n
        for n in ("collector", "gateway", "analytics", "dashboard", "all ready", "banner", "stop", "cpu")
        if n in runs[0]
    ]
    print(f"{'component':<10} " + " ".join(f"run {i + 1:<3}" for i in range(len(runs))) + "  median")
    for name in names:
        values = [r.get(name, float("nan")) for r in runs]
        cells = " ".join(f"{v:7.2f}" for v in values)
        print(f"{name:<10} {cells}  {statistics.median(values):6.2f} s")


if __name__ == "__main__":
    main()
