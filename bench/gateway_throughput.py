"""Gateway throughput and latency, quick: one gateway, one upstream, one load level.

`--upstream demo` (default) uses the embedded `demo` model (its `mock_response` answered in
process by gateway/providers/demo.py; before issue 16, LiteLLM's mock on the LiteLLM path);
`--upstream mock` starts the local OpenAI-protocol mock provider
(`gateway.testing.mock_openai --fast`) and routes `openai/gpt-4o-mini` to it (the direct path).
Starts `meterline gateway` and `meterline collector` as processes, drives them for a fixed time
with N concurrent asyncio clients over HTTP/1.1 keep-alive, and reports requests per second,
latency percentiles, and the gateway process's CPU time per request (from /proc). The full
comparison with the stock LiteLLM proxy is `bench/gateway_vs_litellm.py`.

    .venv/bin/python -m bench.gateway_throughput [--upstream demo|mock] [--seconds 10] [--concurrency 16] [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
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

MOCK_CONFIG = """
model_list:
  - model_name: demo
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:{port}/v1", api_key: sk-mock}}
agents:
  - {{id: support-bot, team: support, key: demo-key-support-bot}}
"""
BODY = {"model": "demo", "messages": [{"role": "user", "content": "Summarise the quarterly plan in one line."}]}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(url: str) -> None:
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)


async def _drive(url: str, seconds: float, concurrency: int, stream: bool) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    body = {**BODY, "stream": stream}
    headers = {"Authorization": "Bearer demo-key-support-bot"}

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
                async for _ in response.aiter_bytes():
                    pass
                assert response.status_code == 200
            latencies.append(time.perf_counter() - t0)

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)) as c:
        await asyncio.gather(*(worker(c) for _ in range(concurrency)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--upstream", choices=["demo", "mock"], default="demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gw, col = _port(), _port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
        env["METERLINE_TELEMETRY__COLLECTOR"] = f"http://127.0.0.1:{col}"
        base = [sys.executable, "-m", "meterline", "--data-dir", f"{tmp}/data"]
        quiet = {"cwd": tmp, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        mock = None
        if args.upstream == "mock":
            mock_port = _port()
            mock = subprocess.Popen(
                [sys.executable, "-m", "gateway.testing.mock_openai", "--port", str(mock_port), "--fast"], **quiet
            )  # type: ignore[call-overload]
            Path(tmp, "meterline.yaml").write_text(MOCK_CONFIG.format(port=mock_port))
            base += ["--config", str(Path(tmp, "meterline.yaml"))]
        collector = subprocess.Popen([*base, "collector", "--port", str(col)], **quiet)  # type: ignore[call-overload]
        gateway = subprocess.Popen([*base, "gateway", "--port", str(gw)], **quiet)  # type: ignore[call-overload]
        try:
            _wait(f"http://127.0.0.1:{col}/health")
            _wait(f"http://127.0.0.1:{gw}/health/readiness")
            asyncio.run(_drive(f"http://127.0.0.1:{gw}", 2, args.concurrency, args.stream))  # warm-up
            cpu0 = _cpu_seconds(gateway.pid)
            t0 = time.monotonic()
            latencies = asyncio.run(_drive(f"http://127.0.0.1:{gw}", args.seconds, args.concurrency, args.stream))
            elapsed = time.monotonic() - t0
            cpu = _cpu_seconds(gateway.pid) - cpu0
        finally:
            for process in (gateway, collector, *([mock] if mock else [])):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    latencies.sort()
    n = len(latencies)
    kind = f"{args.upstream} upstream, " + ("stream" if args.stream else "non-stream")
    print(f"{kind}: {n} requests in {elapsed:.1f} s, concurrency {args.concurrency}")
    print(f"  throughput      {n / elapsed:8.1f} req/s")
    print(f"  gateway CPU     {cpu / n * 1000:8.2f} ms/request")
    print(f"  latency p50     {statistics.median(latencies) * 1000:8.1f} ms")
    print(f"  latency p99     {latencies[int(n * 0.99) - 1] * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
