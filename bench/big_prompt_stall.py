"""A tiny request's latency while a 9 MB prompt is in flight (issue 16: "one 9 MB prompt of a
single repeated character stalled every other request for 7.1 s").

Starts `meterline gateway` from `--repo` (a checkout: this one, or an older commit's worktree
for the before figure) on a demo model group (LiteLLM's `mock_response`, the embedded
defaults' kind), which bills the gateway's own token count. Sends one chat completion with a
9 MB prompt of one repeated character (from curl, so this process only times the tiny ones),
and while it is in flight, tiny chat completions one after another; reports the big request's
time (to within one tiny request) and the tiny ones' latencies. Run it on a quiet
machine and say what else was running.

    .venv/bin/python -m bench.big_prompt_stall [--repo .] [--mb 9] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

KEY = "agent-key-bench-0123456789"
CONFIG = """
model_list:
  - model_name: demo
    litellm_params: {{model: openai/gpt-4o-mini, mock_response: "Hello from the demo."}}
agents:
  - {{id: bench-bot, team: bench, key: {key}}}
telemetry: {{collector: "http://127.0.0.1:{collector}"}}
storage: {{data_dir: "{data}"}}
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def one_run(repo: Path, megabytes: float) -> tuple[float, list[float]]:
    """(seconds the big request took, the latency of each tiny request sent while it was in flight)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "meterline.yaml"
        config.write_text(CONFIG.format(key=KEY, collector=_port(), data=Path(tmp) / "data"))
        port = _port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
        env["PYTHONPATH"] = str(repo)
        gateway = subprocess.Popen(
            [sys.executable, "-m", "meterline", "gateway", "--config", str(config), "--port", str(port)],
            cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {KEY}"}
            tiny = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
            with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if client.get("/health/readiness").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "gateway not ready"
                    time.sleep(0.1)
                for _ in range(20):  # warm
                    client.post("/v1/chat/completions", json=tiny).raise_for_status()
                # The big request from curl, another process, so this one only times the tiny ones.
                body_file = Path(tmp) / "big.json"
                text = "a" * int(megabytes * 1_000_000)
                body_file.write_text(json.dumps({"model": "demo", "messages": [{"role": "user", "content": text}]}))
                del text
                started = time.perf_counter()
                big = subprocess.Popen(
                    ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Authorization: Bearer {KEY}",
                     "-H", "content-type: application/json", "--data-binary", f"@{body_file}",
                     f"{url}/v1/chat/completions"],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                time.sleep(0.3)  # the big body is uploaded and being read
                latencies: list[float] = []
                while big.poll() is None:  # each tiny request sent while the big one is in flight
                    sent = time.perf_counter()
                    client.post("/v1/chat/completions", json=tiny).raise_for_status()
                    latencies.append(time.perf_counter() - sent)
                took = time.perf_counter() - started
                assert big.communicate()[0] == "200", "the big request failed"
                return took, latencies
        finally:
            gateway.terminate()
            gateway.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd())
    parser.add_argument("--mb", type=float, default=9.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for run in range(args.runs):
        took, latencies = one_run(args.repo.resolve(), args.mb)
        ms = sorted(x * 1000 for x in latencies)
        if ms:
            p50, worst = statistics.median(ms), ms[-1]
            tiny = f"{len(ms)} tiny requests sent meanwhile, p50 {p50:.1f} ms, max {worst:.1f} ms"
            print(f"run {run + 1}: big {took:.2f} s; {tiny}")
        else:
            print(f"run {run + 1}: big {took:.2f} s; no tiny request completed while it was in flight")


if __name__ == "__main__":
    main()
