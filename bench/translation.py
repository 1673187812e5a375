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

`--callgrind N` counts instead of timing, for a machine too busy for CPU time to mean much: each
side runs under valgrind's callgrind, collection on only for N calls after a warm-up, and reports
instructions per call and, with `--cache-sim`, simulated L1/last-level misses per call and
KCachegrind's cycle estimate (Ir + 10 x L1 misses + 100 x LL misses) - the part of the cost
that instruction counts miss when the gateway's own work evicts LiteLLM's from the caches.

    .venv/bin/python -m bench.translation [--seconds 10] [--rounds 3] [--concurrency 1,16]
    .venv/bin/python -m bench.translation --callgrind 100 [--cache-sim] [--concurrency 1]
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
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.load import run_load
from bench.processes import Server, free_port

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPUS, LOAD_CPUS = "0", "1"
MOCK_KEY, AGENT_KEY = "sk-ant-mock", "bench-agent-key-0123456789"
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


def _bare_call(api_base: str, stream: bool) -> Callable[[], Awaitable[None]]:
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

    return call


async def _bare(api_base: str, stream: bool, concurrency: int, warmup_s: float, seconds: float) -> dict[str, float]:
    call = _bare_call(api_base, stream)

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


async def _bare_counted(api_base: str, stream: bool, concurrency: int, warm: int, calls: int) -> None:
    """`calls` bare calls with this process's callgrind collection on (it runs under valgrind)."""
    call = _bare_call(api_base, stream)

    async def some(count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(some(warm // concurrency) for _ in range(concurrency)))
    await asyncio.sleep(0.5)
    _callgrind(os.getpid(), "-i", "on")
    await asyncio.gather(*(some(calls // concurrency) for _ in range(concurrency)))
    await asyncio.sleep(0.5)  # LiteLLM's success logging runs as tasks after a call returns
    _callgrind(os.getpid(), "-i", "off")


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


# KCachegrind's cycle estimate; the simulated caches are this VM's: 64 KiB L1d, 2 MiB L2 per core.
VALGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no"]
CACHE_SIM = ["--cache-sim=yes", "--D1=65536,8,64", "--LL=2097152,16,64"]


def _callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=300)


def _counts(prefix: Path) -> dict[str, int]:
    """Event totals over every part file callgrind wrote under `prefix` (a dump, then the exit)."""
    totals: dict[str, int] = {}
    for part in prefix.parent.glob(prefix.name + "*"):
        events: list[str] = []
        for line in part.read_text().splitlines():
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:"):
                for name, value in zip(events, line.split()[1:], strict=False):
                    totals[name] = totals.get(name, 0) + int(value)
    return totals


def _per_call(totals: dict[str, int], calls: int) -> dict[str, float]:
    row = {"instructions": totals.get("Ir", 0) / calls}
    if "I1mr" in totals:
        l1 = sum(totals[name] for name in ("I1mr", "D1mr", "D1mw")) / calls
        ll = sum(totals[name] for name in ("ILmr", "DLmr", "DLmw")) / calls
        row |= {"l1_misses": l1, "ll_misses": ll, "cycles_est": row["instructions"] + 10 * l1 + 100 * ll}
    return row


def _serve_mock(port: int) -> None:
    """The mock Anthropic with a long keep-alive: under valgrind a gateway is slow enough that
    uvicorn's 5 s default closes pooled connections LiteLLM is about to reuse."""
    import uvicorn

    from gateway.testing.behaviour import MockBehaviour
    from gateway.testing.mock_anthropic import create_mock_anthropic

    behaviour = MockBehaviour(accepted_keys={MOCK_KEY}, latency_s=0.0, stream_delay_s=0.0, fast=True, record=False)
    app = create_mock_anthropic(behaviour)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_keep_alive=3600)


async def _post(url: str, body: dict[str, object], concurrency: int, requests: int) -> int:
    """`requests` posts from `concurrency` callers, each answer read to its end; the failures."""
    failures = [0]
    headers = {"Authorization": f"Bearer {AGENT_KEY}"}
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def caller(count: int) -> None:
            for _ in range(count):
                for attempt in range(3):
                    try:
                        async with client.stream("POST", url, json=body, headers=headers) as response:
                            async for _ in response.aiter_bytes():
                                pass
                            failures[0] += response.status_code != 200
                        break
                    except httpx.TransportError:
                        # Under valgrind the gateway's own keep-alive (5 s) can close a pooled
                        # connection just as it is reused; the request never reached it.
                        if attempt == 2:
                            raise

        await asyncio.gather(*(caller(requests // concurrency) for _ in range(concurrency)))
    return failures[0]


class _Setup:
    """The mock and the collector on the load core, the gateway (optionally under `wrapper`) on
    the server core, one temporary directory for their logs and data."""

    def __init__(self, tmp: str, mock_command: list[str] | None = None, wrapper: list[str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "DATABASE_URL"))}
        self.env = env | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT)}
        self.tmp = tmp
        mock_port, collector_port, gateway_port = free_port(), free_port(), free_port()
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
        mock = [sys.executable, "-m", "gateway.testing.mock_anthropic", "--port", str(mock_port), "--fast"]
        self.helpers = [
            # The mock has no GET route: any answer (405 to GET /v1/messages) means it is up.
            self._server(
                "mock",
                [*mock, "--key", MOCK_KEY] if mock_command is None else [*mock_command, str(mock_port)],
                f"http://127.0.0.1:{mock_port}/v1/messages",
                LOAD_CPUS,
                True,
            ),
            self._server(
                "collector",
                [*meterline, "collector", "--port", str(collector_port), "--grpc-port", "0"],
                f"http://127.0.0.1:{collector_port}/health",
                LOAD_CPUS,
            ),
        ]
        self.gateway = self._server(
            "meterline",
            [*(wrapper or []), *meterline, "gateway", "--port", str(gateway_port)],
            f"http://127.0.0.1:{gateway_port}/health/readiness",
            SERVER_CPUS,
        )
        self.api_base = f"http://127.0.0.1:{mock_port}"
        self.url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"

    def _server(self, name: str, command: list[str], ready: str, cpus: str, any_status: bool = False) -> Server:
        log = Path(self.tmp, f"{name}.log")
        return Server(name, command, ready, cpus, self.env, self.tmp, log, ready_any_status=any_status)

    def __enter__(self) -> _Setup:
        try:
            for helper in self.helpers:
                helper.start()
            self.gateway.start(timeout_s=900.0)  # minutes under valgrind
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.gateway.process is not None:
            self.gateway.stop()
        for helper in reversed(self.helpers):
            if helper.process is not None:
                helper.stop()


def _streams(args: argparse.Namespace) -> list[bool]:
    return {"both": [False, True], "non-stream": [False], "stream": [True]}[args.mode]


def _body(stream: bool) -> dict[str, object]:
    body: dict[str, object] = {"model": "claude", "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    if stream:
        body["stream"] = True
    return body


def _timed(args: argparse.Namespace, levels: list[int]) -> list[dict[str, object]]:
    warmup = 2.0
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-translation-") as tmp, _Setup(tmp) as setup:
        for stream in _streams(args):
            body = _body(stream)
            for concurrency in levels:
                # Alternated rounds, medians: the machine's load drifts between measurements.
                bare_cpu, bare_rps, ours_cpu, ours_rps, errors = [], [], [], [], 0
                for _ in range(args.rounds):
                    bare = _run_bare(setup.api_base, stream, concurrency, warmup, args.seconds)
                    bare_cpu.append(bare["cpu_ms_per_call"])
                    bare_rps.append(bare["rps"])
                    run_load(setup.url, body, AGENT_KEY, concurrency, warmup, LOAD_CPUS)
                    cpu0 = setup.gateway.cpu_seconds()
                    load = run_load(setup.url, body, AGENT_KEY, concurrency, args.seconds, LOAD_CPUS)
                    cpu = setup.gateway.cpu_seconds() - cpu0
                    ours_cpu.append(cpu / load.requests * 1000 if load.requests else 0.0)
                    ours_rps.append(load.rps)
                    errors += load.errors
                row: dict[str, object] = {
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
    return rows


def _counted(args: argparse.Namespace, levels: list[int]) -> list[dict[str, object]]:
    calls, warm = args.callgrind, max(args.callgrind // 3, 16)
    tool = [*VALGRIND, *(CACHE_SIM if args.cache_sim else [])]
    mock = [sys.executable, "-m", "bench.translation", "--mock"]
    rows: list[dict[str, object]] = []
    for stream in _streams(args):
        for concurrency in levels:
            with tempfile.TemporaryDirectory(prefix="bench-translation-") as tmp:
                ours_out, bare_out = Path(tmp, "meterline.out"), Path(tmp, "bare.out")
                wrapper = [*tool, f"--callgrind-out-file={ours_out}"]
                with _Setup(tmp, mock_command=mock, wrapper=wrapper) as setup:
                    command = [*tool, f"--callgrind-out-file={bare_out}", sys.executable, "-m", "bench.translation"]
                    command += ["--bare-counted", setup.api_base, str(stream), str(concurrency), str(warm), str(calls)]
                    done = subprocess.run(
                        ["taskset", "-c", SERVER_CPUS, *command], capture_output=True, text=True, env=setup.env
                    )
                    if done.returncode != 0:
                        raise RuntimeError(f"bare acompletion loop failed: {done.stderr[-2000:]}")
                    failures = asyncio.run(_post(setup.url, _body(stream), concurrency, warm))
                    _callgrind(setup.gateway.pid, "-i", "on")
                    failures += asyncio.run(_post(setup.url, _body(stream), concurrency, calls))
                    time.sleep(1.0)  # the spans and usage records of the last requests are exported
                    _callgrind(setup.gateway.pid, "-i", "off")
                    _callgrind(setup.gateway.pid, "-d")
                bare, ours = _per_call(_counts(bare_out), calls), _per_call(_counts(ours_out), calls)
            key = "cycles_est" if "cycles_est" in bare else "instructions"
            row: dict[str, object] = {
                "mode": "stream" if stream else "non-stream",
                "concurrency": concurrency,
                "calls": calls,
                "meterline_errors": failures,
                **{f"bare_{name}": value for name, value in bare.items()},
                **{f"meterline_{name}": value for name, value in ours.items()},
                "ratio_instructions": ours["instructions"] / bare["instructions"],
                "ratio": ours[key] / bare[key],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _table(rows: list[dict[str, object]]) -> str:
    if "bare_instructions" not in rows[0]:
        head = "| mode | conc. | bare acompletion calls/s | bare CPU ms/call | meterline req/s | meterline CPU ms/req |"
        lines = [head + " ratio |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in rows:
            failed = f" ({row['meterline_errors']} errors)" if row["meterline_errors"] else ""
            lines.append(
                f"| {row['mode']} | {row['concurrency']} | {row['bare_rps']:,.0f} | {row['bare_cpu_ms']:.2f} | "
                f"{row['meterline_rps']:,.0f}{failed} | {row['meterline_cpu_ms']:.2f} | {row['ratio']:.2f}x |"
            )
        return "\n".join(lines)
    cache = "bare_cycles_est" in rows[0]
    head = "| mode | conc. | bare M instr./call | meterline M instr./req | instr. ratio |"
    if cache:
        head += " bare / meterline k LL misses | bare / meterline M est. cycles | est. cycles ratio |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for row in rows:
        failed = f" ({row['meterline_errors']} errors)" if row["meterline_errors"] else ""
        line = (
            f"| {row['mode']} | {row['concurrency']} | {float(row['bare_instructions']) / 1e6:.2f} | "  # type: ignore[arg-type]
            f"{float(row['meterline_instructions']) / 1e6:.2f}{failed} | {row['ratio_instructions']:.3f}x |"  # type: ignore[arg-type]
        )
        if cache:
            line += (
                f" {float(row['bare_ll_misses']) / 1e3:.1f} / {float(row['meterline_ll_misses']) / 1e3:.1f} |"  # type: ignore[arg-type]
                f" {float(row['bare_cycles_est']) / 1e6:.2f} / {float(row['meterline_cycles_est']) / 1e6:.2f} |"  # type: ignore[arg-type]
                f" {row['ratio']:.3f}x |"
            )
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        base, streamed, callers, warmup_s, seconds = sys.argv[2:7]
        result = asyncio.run(_bare(base, streamed == "True", int(callers), float(warmup_s), float(seconds)))
        print(json.dumps(result))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-counted":
        base, streamed, callers, warm, calls = sys.argv[2:7]
        asyncio.run(_bare_counted(base, streamed == "True", int(callers), int(warm), int(calls)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--mock":
        _serve_mock(int(sys.argv[-1]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--rounds", type=int, default=3, help="alternated bare/meterline rounds; medians reported")
    parser.add_argument("--callgrind", type=int, default=0, metavar="N", help="count N calls under callgrind instead")
    parser.add_argument("--cache-sim", action="store_true", help="with --callgrind: simulated cache misses too")
    parser.add_argument("--mode", choices=("both", "non-stream", "stream"), default="both")
    parser.add_argument("--out", type=Path, default=ROOT / "data/bench/translation.json")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = _counted(args, levels) if args.callgrind else _timed(args, levels)
    table = _table(rows)
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "markdown": table}, indent=2))


if __name__ == "__main__":
    main()
