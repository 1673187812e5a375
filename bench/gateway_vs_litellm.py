"""Meterline's gateway against the stock LiteLLM proxy: same core, same mock upstream, same load.

Starts the local OpenAI mock (`gateway.testing.mock_openai --fast`), then in turn
- `direct`: the mock itself, the baseline that "added latency" is measured against;
- `meterline`: `python -m meterline --config <tmp yaml> gateway` with an agent key, the model
  routed to the mock (`openai/gpt-4o-mini`, `api_base` the mock), spans and usage records
  exported to a running `meterline collector`, agent limits configured;
- `litellm`: the stock LiteLLM proxy (`litellm --config <tmp yaml> --num_workers 1`, master key,
  no database) from its own virtualenv, pinned by bench/litellm_proxy_constraints.txt.
Each server under test runs under `taskset -c 0`; the load generator, the mock and the collector
share core 1. For each of non-stream and stream (the client does not ask for usage) and
concurrency 1, 16 and 64 it reports req/s, p50/p99 latency and the latency added over `direct`,
the server's CPU ms per request (utime+stime of its process tree from /proc), RSS idle and at
peak under load, and the time from process start to `/health/readiness` answering 200.

Load comes from wrk (`apt-get install -y wrk` works on this machine) with a Lua script for the
POST body; without /usr/bin/wrk, from a separate Python process (`bench/load.py`), which is slower.

Set-up for the stock proxy (litellm[proxy] 1.106.2 pins polars<2 and websockets<16, Meterline
needs polars>=2.1, so it cannot live in Meterline's venv):
    python3.11 -m venv .venv/bench-litellm-proxy
    .venv/bench-litellm-proxy/bin/pip install -c bench/litellm_proxy_constraints.txt 'litellm[proxy]==1.106.2'
Run (~4 minutes; --quick ~1.5 minutes):
    .venv/bin/python -m bench.gateway_vs_litellm [--quick] [--servers meterline,litellm] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.load import WRK, LoadResult, run_load
from bench.processes import Server, core_busy_seconds, free_port

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPUS, LOAD_CPUS = "0", "1"
MOCK_KEY, AGENT_KEY, MASTER_KEY = "sk-mock", "bench-agent-key-0123456789", "sk-bench-master"
MODEL = "gpt-4o-mini"
BODY: dict[str, object] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Summarise the quarterly plan in one line."}],
}
MODES = ("non-stream", "stream")
CONCURRENCY = (1, 16, 64)

METERLINE_CONFIG = """
model_list:
  - model_name: {model}
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:{mock}/v1", api_key: {mock_key}}}
router_settings: {{routing_strategy: simple-shuffle, num_retries: 2, timeout: 30}}
agents:
  - id: bench-agent
    team: bench
    project: perf
    key: {agent_key}
    limits: {{rpm: 100000000, tpm: 100000000000}}
telemetry: {{collector: "http://127.0.0.1:{collector}"}}
storage: {{data_dir: "{data}"}}
"""
LITELLM_CONFIG = """
model_list:
  - model_name: {model}
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:{mock}/v1", api_key: {mock_key}}}
general_settings: {{master_key: {master_key}}}
"""


@dataclass(frozen=True, slots=True)
class Cell:
    server: str
    mode: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    requests: int
    errors: int
    # Busy fraction of the server's core from /proc/stat; above the server's own share means other
    # processes on the machine ran there too, and req/s and latency are not clean.
    core_busy: float
    server_share: float


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str
    key: str
    server: Server | None  # None for the direct mock, whose CPU is not the subject


def _measure(target: Target, mode: str, concurrency: int, seconds: float, warmup: float) -> Cell:
    body = {**BODY, "stream": True} if mode == "stream" else BODY
    url = f"{target.url}/v1/chat/completions"
    run_load(url, body, target.key, concurrency, warmup, LOAD_CPUS)
    server = target.server
    sampler = server.sample_rss() if server else None
    cpu0 = server.cpu_seconds() if server else 0.0
    busy0, t0 = core_busy_seconds(int(SERVER_CPUS)), time.monotonic()
    result: LoadResult = run_load(url, body, target.key, concurrency, seconds, LOAD_CPUS)
    cpu = (server.cpu_seconds() - cpu0) if server else 0.0
    elapsed = time.monotonic() - t0
    busy = (core_busy_seconds(int(SERVER_CPUS)) - busy0) / elapsed
    if server and sampler:
        server.stop_sampling(sampler)
    per_request = cpu / result.requests * 1000 if result.requests and server else 0.0
    return Cell(
        target.name,
        mode,
        concurrency,
        result.rps,
        result.p50_ms,
        result.p99_ms,
        per_request,
        result.requests,
        result.errors,
        busy,
        cpu / elapsed,
    )


def _machine(litellm_python: Path) -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = Path("/proc/meminfo").read_text().split()[1]

    def output(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.strip()
        except OSError:
            return "unavailable"

    version = "import importlib.metadata as m; print(m.version('litellm'))"
    return {
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
        "memory_gib": f"{int(memory) / 2**20:.0f}",
        "python": platform.python_version(),
        "litellm_proxy": output(str(litellm_python), "-c", version) if litellm_python.exists() else "not installed",
        "load_generator": output(WRK, "--version").splitlines()[0] if WRK else "python (bench/load.py)",
        "meterline_commit": output("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
    }


def _report(cells: list[Cell], servers: dict[str, dict[str, float]]) -> str:
    by = {(c.server, c.mode, c.concurrency): c for c in cells}
    names = [n for n in ("meterline", "litellm") if any(c.server == n for c in cells)]
    head = ["mode", "conc.", "direct req/s"]
    for name in names:
        head += [f"{name} req/s", f"{name} added p50 / p99 ms", f"{name} CPU ms/req", f"{name} core 0 busy / own"]
    if len(names) == 2:
        head.append("meterline / litellm")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for mode in MODES:
        for concurrency in CONCURRENCY:
            direct = by.get(("direct", mode, concurrency))
            if direct is None:
                continue
            row = [mode, str(concurrency), f"{direct.rps:,.0f}"]
            for name in names:
                cell = by[(name, mode, concurrency)]
                errors = f" ({cell.errors} errors)" if cell.errors else ""
                added = f"{cell.p50_ms - direct.p50_ms:.2f} / {cell.p99_ms - direct.p99_ms:.2f}"
                busy = f"{cell.core_busy:.0%} / {cell.server_share:.0%}"
                row += [f"{cell.rps:,.0f}{errors}", added, f"{cell.cpu_ms_per_request:.2f}", busy]
            if len(names) == 2:
                ours, theirs = by[("meterline", mode, concurrency)], by[("litellm", mode, concurrency)]
                row.append(f"{ours.rps / theirs.rps:.1f}x" if theirs.rps else "-")
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| server | start to ready | RSS idle | RSS peak under load |", "| --- | --- | --- | --- |"]
    for name, figures in servers.items():
        lines.append(
            f"| {name} | {figures['ready_s']:.2f} s | {figures['rss_idle_mib']:.0f} MiB | "
            f"{figures['rss_peak_mib']:.0f} MiB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per measurement instead of 10")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--servers", default="meterline,litellm", help="comma-separated: meterline, litellm")
    parser.add_argument("--litellm-python", type=Path, default=ROOT / ".venv/bench-litellm-proxy/bin/python")
    parser.add_argument("--out", type=Path, default=ROOT / "data/bench/gateway_vs_litellm.json")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    warmup = 1.0 if args.quick else 2.0
    chosen = [name.strip() for name in args.servers.split(",") if name.strip()]
    if "litellm" in chosen and not args.litellm_python.exists():
        sys.exit(f"{args.litellm_python} not found; see the set-up in this script's docstring")

    cells: list[Cell] = []
    servers: dict[str, dict[str, float]] = {}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "DATABASE_URL"))}
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        env["PYTHONPATH"] = str(ROOT)
        mock_port, collector_port = free_port(), free_port()

        def server(
            name: str, command: list[str], ready: str, cpus: str, headers: dict[str, str] | None = None
        ) -> Server:
            return Server(name, command, ready, cpus, env, tmp, Path(tmp, f"{name}.log"), headers or {})

        mock = server(
            "mock",
            [
                sys.executable,
                "-m",
                "gateway.testing.mock_openai",
                "--port",
                str(mock_port),
                "--fast",
                "--key",
                MOCK_KEY,
            ],
            f"http://127.0.0.1:{mock_port}/v1/models",
            LOAD_CPUS,
            {"Authorization": f"Bearer {MOCK_KEY}"},
        )
        fields = {"model": MODEL, "mock": mock_port, "mock_key": MOCK_KEY, "collector": collector_port}
        meterline_yaml = Path(tmp, "meterline.yaml")
        meterline_yaml.write_text(METERLINE_CONFIG.format(**fields, agent_key=AGENT_KEY, data=f"{tmp}/data"))
        litellm_yaml = Path(tmp, "litellm.yaml")
        litellm_yaml.write_text(LITELLM_CONFIG.format(**fields, master_key=MASTER_KEY))
        meterline = [sys.executable, "-m", "meterline", "--config", str(meterline_yaml)]
        collector = server(
            "collector",
            [*meterline, "collector", "--port", str(collector_port), "--grpc-port", "0"],
            f"http://127.0.0.1:{collector_port}/health",
            LOAD_CPUS,
        )
        helpers = [mock, collector]
        try:
            for helper in helpers:
                helper.start()
            targets = [Target("direct", f"http://127.0.0.1:{mock_port}", MOCK_KEY, None)]
            for name in chosen:
                port = free_port()
                if name == "meterline":
                    command = [*meterline, "gateway", "--port", str(port)]
                    key = AGENT_KEY
                else:
                    litellm = str(args.litellm_python.parent / "litellm")
                    command = [litellm, "--config", str(litellm_yaml), "--host", "127.0.0.1", "--port", str(port)]
                    command += ["--num_workers", "1"]
                    key = MASTER_KEY
                targets.append(
                    Target(
                        name,
                        f"http://127.0.0.1:{port}",
                        key,
                        server(name, command, f"http://127.0.0.1:{port}/health/readiness", SERVER_CPUS),
                    )
                )
            for target in targets:
                if target.server:
                    target.server.start()
                    time.sleep(1.0)  # let start-up work (lazy imports, first GC) settle before "idle"
                    idle = target.server.rss_mib()
                try:
                    for mode in MODES:
                        for concurrency in CONCURRENCY:
                            cell = _measure(target, mode, concurrency, seconds, warmup)
                            cells.append(cell)
                            print(
                                f"{cell.server:9} {mode:10} c={concurrency:<3} {cell.rps:8.0f} req/s  "
                                f"p50 {cell.p50_ms:7.2f} ms  p99 {cell.p99_ms:7.2f} ms  "
                                f"CPU {cell.cpu_ms_per_request:6.2f} ms/req  errors {cell.errors}  "
                                f"core {SERVER_CPUS} busy {cell.core_busy:4.0%} (server {cell.server_share:4.0%})",
                                flush=True,
                            )
                finally:
                    if target.server:
                        servers[target.name] = {
                            "ready_s": target.server.ready_s,
                            "rss_idle_mib": idle,
                            "rss_peak_mib": target.server.peak_rss_mib,
                        }
                        target.server.stop()
        finally:
            for helper in reversed(helpers):
                helper.stop()

    table = _report(cells, servers)
    print()
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "started": started,
                "command": " ".join(["python -m bench.gateway_vs_litellm", *sys.argv[1:]]),
                "seconds_per_measurement": seconds,
                "machine": _machine(args.litellm_python),
                "cells": [asdict(c) for c in cells],
                "servers": servers,
                "markdown": table,
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
