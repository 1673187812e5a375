"""The LiteLLM-translation path's CPU per call against a bare `litellm.acompletion` (issue #3:
at most 1.2 times).

Both reach the same local mock Anthropic (`gateway.testing.mock_anthropic --fast`) through
LiteLLM's `anthropic/` translation, and each runs alone pinned to core 0:
- `bare`: one process looping `litellm.acompletion(model="anthropic/claude-haiku-4-5", ...)`
  with `concurrency` callers (a stream is read to its end), the cost floor of any gateway on
  LiteLLM's translation;
- `meterline`: the gateway with an agent key, agent limits, spans and usage records exported to a
  running collector, the model group on `anthropic/claude-haiku-4-5`; wrk (or bench/load.py)
  posts OpenAI chat completions from core 1.
CPU is utime+stime of the process over the measured window, divided by calls; bare and meterline
rounds alternate and the medians are reported, since other load on the machine drifts.

    .venv/bin/python -m bench.translation [--seconds 10] [--rounds 3] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import run_load
from bench.processes import Server, free_port

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPUS, LOAD_CPUS = "0", "1"
MOCK_KEY, AGENT_KEY = "sk-ant-mock", "bench-agent-key"
PROVIDER_MODEL = "anthropic/claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Summarise the quarterly plan in one line."}]
MAX_TOKENS = 256

CONFIG = """
model_list:
  - model_name: claude
    litellm_params: {{model: {model}, api_base: "http://127.0.0.1:{mock}", api_key: {mock_key}}}
agents:
  - id: bench-agent
    team: bench
    key: {agent_key}
    limits: {{rpm: 100000000, tpm: 100000000000}}
telemetry: {{collector: "http://127.0.0.1:{collector}"}}
storage: {{data_dir: "{data}"}}
"""


async def _bare(api_base: str, stream: bool, concurrency: int, warmup_s: float, seconds: float) -> dict[str, float]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    async def call() -> None:
        result = await litellm.acompletion(
            model=PROVIDER_MODEL,
            messages=MESSAGES,
            api_base=api_base,
            api_key=MOCK_KEY,
            max_tokens=MAX_TOKENS,
            stream=stream,
            num_retries=0,
            **({"stream_options": {"include_usage": True}} if stream else {}),
        )
        if stream:
            async for _ in result:
                pass

    async def loop(until: float, counter: list[int]) -> None:
        while time.monotonic() < until:
            await call()
            counter[0] += 1

    warm: list[int] = [0]
    await asyncio.gather(*(loop(time.monotonic() + warmup_s, warm) for _ in range(concurrency)))
    calls: list[int] = [0]
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(loop(t0 + seconds, calls) for _ in range(concurrency)))
    cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
    return {"calls": calls[0], "rps": calls[0] / elapsed, "cpu_ms_per_call": cpu / calls[0] * 1000}


def _run_bare(api_base: str, stream: bool, concurrency: int, warmup_s: float, seconds: float) -> dict[str, float]:
    """The bare loop in its own process on the server core, so nothing else shares its CPU."""
    command = [sys.executable, "-m", "bench.translation", "--bare", api_base, str(stream), str(concurrency)]
    command += [str(warmup_s), str(seconds)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        ["taskset", "-c", SERVER_CPUS, *command], capture_output=True, text=True, env=env, timeout=seconds + 300
    )
    if done.returncode != 0:
        raise RuntimeError(f"bare acompletion loop failed: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        base, streamed, callers, warmup_s, seconds = sys.argv[2:7]
        result = asyncio.run(_bare(base, streamed == "True", int(callers), float(warmup_s), float(seconds)))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--rounds", type=int, default=3, help="alternated bare/meterline rounds; medians reported")
    parser.add_argument("--out", type=Path, default=ROOT / "data/bench/translation.json")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    warmup = 2.0
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-translation-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "DATABASE_URL"))}
        env |= {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT)}
        mock_port, collector_port, gateway_port = free_port(), free_port(), free_port()

        def server(name: str, command: list[str], ready: str, cpus: str, any_status: bool = False) -> Server:
            return Server(name, command, ready, cpus, env, tmp, Path(tmp, f"{name}.log"), ready_any_status=any_status)

        config = Path(tmp, "meterline.yaml")
        config.write_text(
            CONFIG.format(
                model=PROVIDER_MODEL,
                mock=mock_port,
                mock_key=MOCK_KEY,
                agent_key=AGENT_KEY,
                collector=collector_port,
                data=f"{tmp}/data",
            )
        )
        meterline = [sys.executable, "-m", "meterline", "--config", str(config)]
        mock_command = [sys.executable, "-m", "gateway.testing.mock_anthropic", "--port", str(mock_port)]
        helpers = [
            # The mock has no GET route: any answer (405 to GET /v1/messages) means it is up.
            server(
                "mock",
                [*mock_command, "--fast", "--key", MOCK_KEY],
                f"http://127.0.0.1:{mock_port}/v1/messages",
                LOAD_CPUS,
                True,
            ),
            server(
                "collector",
                [*meterline, "collector", "--port", str(collector_port), "--grpc-port", "0"],
                f"http://127.0.0.1:{collector_port}/health",
                LOAD_CPUS,
            ),
        ]
        gateway = server(
            "meterline",
            [*meterline, "gateway", "--port", str(gateway_port)],
            f"http://127.0.0.1:{gateway_port}/health/readiness",
            SERVER_CPUS,
        )
        api_base = f"http://127.0.0.1:{mock_port}"
        try:
            for helper in helpers:
                helper.start()
            gateway.start()
            url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
            for stream in (False, True):
                body: dict[str, object] = {"model": "claude", "messages": MESSAGES, "max_tokens": MAX_TOKENS}
                if stream:
                    body["stream"] = True
                for concurrency in levels:
                    row: dict[str, object]
                    # Alternated rounds, medians: the machine's load drifts between measurements.
                    bare_cpu, bare_rps, ours_cpu, ours_rps, errors = [], [], [], [], 0
                    for _ in range(args.rounds):
                        bare = _run_bare(api_base, stream, concurrency, warmup, args.seconds)
                        bare_cpu.append(bare["cpu_ms_per_call"])
                        bare_rps.append(bare["rps"])
                        run_load(url, body, AGENT_KEY, concurrency, warmup, LOAD_CPUS)
                        cpu0 = gateway.cpu_seconds()
                        load = run_load(url, body, AGENT_KEY, concurrency, args.seconds, LOAD_CPUS)
                        cpu = gateway.cpu_seconds() - cpu0
                        ours_cpu.append(cpu / load.requests * 1000 if load.requests else 0.0)
                        ours_rps.append(load.rps)
                        errors += load.errors
                    row = {
                        "mode": "stream" if stream else "non-stream",
                        "concurrency": concurrency,
                        "bare_rps": statistics.median(bare_rps),
                        "bare_cpu_ms": statistics.median(bare_cpu),
                        "meterline_rps": statistics.median(ours_rps),
                        "meterline_cpu_ms": statistics.median(ours_cpu),
                        "meterline_errors": errors,
                        "ratio": statistics.median(ours_cpu) / statistics.median(bare_cpu),
                        "bare_cpu_ms_rounds": bare_cpu,
                        "meterline_cpu_ms_rounds": ours_cpu,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            gateway.stop()
            for helper in reversed(helpers):
                helper.stop()
    head = "| mode | conc. | bare acompletion calls/s | bare CPU ms/call | meterline req/s | meterline CPU ms/req |"
    lines = [head + " ratio |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        failed = f" ({row['meterline_errors']} errors)" if row["meterline_errors"] else ""
        lines.append(
            f"| {row['mode']} | {row['concurrency']} | {row['bare_rps']:,.0f} | {row['bare_cpu_ms']:.2f} | "
            f"{row['meterline_rps']:,.0f}{failed} | {row['meterline_cpu_ms']:.2f} | {row['ratio']:.2f}x |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "markdown": table}, indent=2))


if __name__ == "__main__":
    main()
