"""Collector ingest on one core with the WAL on, request -> DuckDB latency, and the gateway's
telemetry tax per request.

    .venv/bin/python -m bench.collector_ingest [ingest|latency|tax|all] [--seconds 10]

ingest   The real collector (`meterline collector`, uvicorn, WAL fdatasync on) pinned to core 0;
         senders in another process pinned to core 1 post pre-encoded OTLP/HTTP protobuf bodies
         (512 spans or usage records each, as the gateway batches them; every usage record has
         its own request_id, so none is dropped as a duplicate) from 8 concurrent connections.
         Reports acknowledged records/s, collector CPU per 1,000 records, peak RSS (VmHWM).
latency  Collector and gateway at their defaults (export every 500 ms, WAL published every 1 s)
         with a mock OpenAI upstream: one completion, then poll the DuckDB catalog read-only until
         its request_id is queryable. Repeated; median and max.
tax      The gateway's own telemetry classes in-process (TelemetryExporter with its on-disk spool,
         flush window 50 ms) exporting to a real collector on the other core: N requests, each a
         usage record plus a server span with one upstream-attempt child span; process CPU time
         (all threads) from the first submit until everything is acknowledged, divided by N.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.processes import Server, free_port

_BATCH = 512
_CONNECTIONS = 8
_PROTOBUF = {"content-type": "application/x-protobuf"}
_ID_STEM = b"req_00000000"
"""Usage request ids are `req_<batch, 8 hex><record, 24 hex>`: the gateway's own format, which
the collector's validation requires (collector.validation.request_id_pattern)."""


def _usage_record(request_id: str, n: int = 0) -> object:
    """A gateway usage record; `n` varies its times, tokens and cost as real traffic does."""
    from meterline.usage_record import UsageRecord

    start = dt.datetime.now(dt.UTC) - dt.timedelta(microseconds=n * 997)
    latency_ms = 300.0 + (n * 7919) % 2000
    input_tokens, output_tokens = 200 + (n * 31) % 4000, 20 + (n * 17) % 900
    return UsageRecord(
        request_id=request_id,
        trace_id=f"{n:032x}",
        span_id=f"{n + 1:016x}",
        ts_start=start,
        ts_end=start + dt.timedelta(milliseconds=latency_ms),
        latency_ms=latency_ms,
        ttft_ms=None,
        agent_id=f"agent-{n % 20}",
        team=f"team-{n % 5}",
        project="helpdesk",
        key_alias=f"agent-{n % 20}-2026",
        tags={"cost_center": f"cc-{n % 7}"},
        operation="chat",
        model_requested="gpt-4o-mini",
        model="gpt-4o-mini-2024-07-18",
        provider="openai",
        date=start.date(),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=(n * 13) % 1000,
        cost_usd=input_tokens * 0.15e-6 + output_tokens * 0.6e-6,
        usage_raw=f'{{"prompt_tokens":{input_tokens},"completion_tokens":{output_tokens}}}',
        price_version="litellm-1.106.2",
        provider_key_version="v3",
        gateway_instance="gw-1",
        env="prod",
        tenant="default",
    )


def _attempt() -> object:
    from gateway.routing.deployments import Deployment
    from gateway.routing.router import Attempt

    deployment = Deployment(
        id="openai-1", group="gpt-4o-mini", litellm_model="openai/gpt-4o-mini", provider="openai",
        model="gpt-4o-mini", api_base=None, api_key=None, direct=True,
    )  # fmt: skip
    now = time.time_ns()
    return Attempt(deployment=deployment, started_ns=now - 800_000_000, ended_ns=now, outcome="ok", status=200)


def _usage_templates(count: int) -> list[bytes]:
    """`count` bodies of 512 usage records, every record with its own times, tokens and cost,
    request_ids `req_00000000<24 hex>`; `_usage_body` renumbers them per post."""
    from gateway.telemetry.exporter import TelemetryExporter
    from gateway.telemetry.spool import Spool

    exporter = TelemetryExporter("http://unused", {"service.name": "meterline-gateway"}, spool=Spool(Path("unused"), 1))
    return [
        exporter._encode_logs(
            [_usage_record(f"{_ID_STEM.decode()}{b * _BATCH + i:024x}", b * _BATCH + i) for i in range(_BATCH)]  # type: ignore[misc]
        )
        for b in range(count)
    ]


def _usage_body(template: bytes, batch: int) -> bytes:
    # Same length, so every protobuf length prefix stays valid.
    return template.replace(_ID_STEM, f"req_{batch:08x}".encode())


def _spans_body() -> bytes:
    from gateway.telemetry.exporter import SpanDraft, TelemetryExporter
    from gateway.telemetry.spool import Spool

    exporter = TelemetryExporter("http://unused", {"service.name": "meterline-gateway"}, spool=Spool(Path("unused"), 1))
    drafts = [
        SpanDraft(record=_usage_record(f"span-{i}", i), parent_span_id=None, route="/v1/chat/completions",  # type: ignore[arg-type]
                  response_id=f"chatcmpl-{i}", finish_reasons=("stop",))
        for i in range(_BATCH)
    ]  # fmt: skip
    return exporter._encode_spans(drafts)


# -- the sender process ------------------------------------------------------------------------


async def _send(url: str, signal: str, seconds: float) -> tuple[int, int]:
    """Post for `seconds`; returns (records acknowledged, pushbacks)."""
    path = "/v1/traces" if signal == "spans" else "/v1/logs"
    # 300 distinct usage bodies (153,600 records) cycle, so values repeat too rarely for the
    # collector's attribute cache to flatter the result; spans have no such cache.
    templates = _usage_templates(300) if signal == "usage" else [_spans_body()]
    counter = iter(range(1, 10**8))
    acknowledged = pushbacks = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal acknowledged, pushbacks
        while time.monotonic() < deadline:
            n = next(counter)
            body = _usage_body(templates[n % len(templates)], n) if signal == "usage" else templates[0]
            response = await client.post(path, content=body, headers=_PROTOBUF)
            if response.status_code == 200:
                acknowledged += _BATCH
            else:
                pushbacks += 1
                await asyncio.sleep(0.05)

    limits = httpx.Limits(max_connections=_CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(_CONNECTIONS)))
    return acknowledged, pushbacks


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _collector(tmp: Path, port: int, cpus: str, name: str = "collector") -> Server:
    data = tmp / f"data-{name}"
    command = [sys.executable, "-m", "meterline", "--data-dir", str(data), "collector"]
    return Server(
        name=name,
        command=[*command, "--port", str(port), "--grpc-port", "0"],
        ready_url=f"http://127.0.0.1:{port}/health",
        cpus=cpus,
        env=_env(),
        cwd=str(tmp),
        log=tmp / f"{name}.log",
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # `bench` from a temp cwd
    return env


def ingest(signal: str, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        collector = _collector(tmp, port, "0", f"collector-{signal}")
        collector.start()
        try:
            cpu0 = collector.cpu_seconds()
            sender = subprocess.run(
                ["taskset", "-c", "1", sys.executable, "-m", "bench.collector_ingest", "_send",
                 f"http://127.0.0.1:{port}", signal, str(seconds)],
                capture_output=True, text=True, check=True, env=_env(),
            )  # fmt: skip
            time.sleep(2.5)  # let the publisher turn the last WAL segment into Parquet: its CPU counts
            cpu = collector.cpu_seconds() - cpu0
            acknowledged, pushbacks = (int(v) for v in sender.stdout.split())
            peak = _peak_rss_mib(collector.pid)
        finally:
            collector.stop()
    # Rates use the sender's posting window; its startup (imports, encoding) is outside it.
    print(
        f"{signal:<6} {acknowledged / seconds:>10,.0f} records/s acknowledged   "
        f"collector CPU {cpu / max(acknowledged, 1) * 1e6:6.1f} ms per 1,000 (incl. Parquet)   "
        f"peak RSS {peak:6.1f} MiB   503 pushbacks {pushbacks}"
    )


# -- request -> queryable ----------------------------------------------------------------------


def latency(runs: int) -> None:
    from collector.catalog import open_catalog
    from meterline.layout import DataLayout

    results: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mock_port, collector_port, gateway_port = free_port(), free_port(), free_port()
        mock = Server("mock", [sys.executable, "-m", "bench.collector_ingest", "_mock", str(mock_port)],
                      f"http://127.0.0.1:{mock_port}/v1/models", "1", _env(), str(tmp), tmp / "mock.log",
                      ready_headers={"Authorization": "Bearer sk-mock"})  # fmt: skip
        config = tmp / "meterline.yaml"
        config.write_text(
            f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:{mock_port}/v1", api_key: sk-mock}}
agents:
  - {{id: bench-bot, team: bench, key: key-bench-agent-01234567}}
telemetry: {{collector: "http://127.0.0.1:{collector_port}"}}
"""
        )
        data = tmp / "data"
        shared = [sys.executable, "-m", "meterline", "--config", str(config), "--data-dir", str(data)]
        collector_command = [*shared, "collector", "--port", str(collector_port), "--grpc-port", "0"]
        collector = Server(
            "collector", collector_command, f"http://127.0.0.1:{collector_port}/health", "0", _env(), str(tmp),
            tmp / "c.log",
        )  # fmt: skip
        gateway = Server(
            "gateway", [*shared, "gateway", "--port", str(gateway_port)],
            f"http://127.0.0.1:{gateway_port}/health/readiness", "1", _env(), str(tmp), tmp / "g.log",
        )  # fmt: skip
        servers = [mock, collector, gateway]
        try:
            for server in servers:
                server.start()
            layout = DataLayout.at(data)
            with httpx.Client(base_url=f"http://127.0.0.1:{gateway_port}", timeout=30) as client:
                for i in range(runs):
                    body = {"model": "gpt", "messages": [{"role": "user", "content": f"latency probe {i}"}]}
                    sent = time.monotonic()
                    response = client.post(
                        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer key-bench-agent-01234567"}
                    )
                    response.raise_for_status()
                    request_id = response.headers["x-request-id"]
                    while not _queryable(layout, request_id, open_catalog):
                        time.sleep(0.02)
                    results.append(time.monotonic() - sent)
                    time.sleep(0.3)  # start the next probe at a different point of the flush cycles
        finally:
            for server in reversed(servers):
                server.stop()
    print(
        f"request -> queryable in DuckDB: median {statistics.median(results):.2f} s   max {max(results):.2f} s   "
        f"min {min(results):.2f} s   runs {len(results)}"
    )


def _queryable(layout: object, request_id: str, open_catalog: object) -> bool:
    import duckdb

    try:
        with open_catalog(layout) as con:  # type: ignore[operator]
            row = con.execute("SELECT count(*) FROM usage WHERE request_id = ?", [request_id]).fetchone()
    except (duckdb.Error, OSError):
        return False  # the collector holds the catalog for a moment while it refreshes it
    return bool(row and row[0])


def _serve_mock(port: int) -> None:
    import uvicorn

    from gateway.testing.behaviour import MockBehaviour
    from gateway.testing.mock_openai import create_mock_openai

    app = create_mock_openai(MockBehaviour(accepted_keys={"sk-mock"}, record=False))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- the gateway's telemetry tax ---------------------------------------------------------------


def tax(requests: int) -> None:
    from gateway.telemetry.exporter import SpanDraft, TelemetryExporter
    from gateway.telemetry.spool import Spool

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        collector = _collector(tmp, port, "1")
        collector.start()
        os.sched_setaffinity(0, {0})
        try:
            records = [_usage_record(f"req_{i:032x}", i) for i in range(requests)]
            attempt = _attempt()
            drafts = [
                SpanDraft(record=r, parent_span_id=None, route="/v1/chat/completions", response_id=f"chatcmpl-{i}",  # type: ignore[arg-type]
                          finish_reasons=("stop",), attempts=(attempt,))  # type: ignore[arg-type]
                for i, r in enumerate(records)
            ]  # fmt: skip

            async def drive() -> tuple[float, float]:
                exporter = TelemetryExporter(
                    f"http://127.0.0.1:{port}", {"service.name": "meterline-gateway"},
                    spool=Spool(tmp / "spool", 1024**3), flush_ms=50,
                )  # fmt: skip
                await exporter.start()
                cpu0, t0 = time.process_time(), time.monotonic()
                # Submit at a steady rate in slices, as a busy gateway would, not all at once.
                for start in range(0, requests, 200):
                    for record, draft in zip(records[start : start + 200], drafts[start : start + 200], strict=True):
                        exporter.submit(record, draft)  # type: ignore[arg-type]
                    await asyncio.sleep(0.005)
                # The exporter signals nothing when a batch is acknowledged; poll its counters.
                while exporter.exported_usage < requests or exporter.exported_spans < requests:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
                await exporter.close()
                return cpu, wall

            cpu, wall = asyncio.run(drive())
            collector_cpu = collector.cpu_seconds()
        finally:
            collector.stop()
    print(
        f"gateway telemetry tax: {cpu / requests * 1e6:.1f} us CPU per request (1 usage record + 2 spans, "
        f"spool on)   {requests} requests in {wall:.1f} s   collector CPU total {collector_cpu:.1f} s"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_send":
        acknowledged, pushbacks = asyncio.run(_send(sys.argv[2], sys.argv[3], float(sys.argv[4])))
        print(acknowledged, pushbacks)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_mock":
        _serve_mock(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=["ingest", "latency", "tax", "all"], default="all")
    parser.add_argument("--seconds", type=float, default=10.0, help="posting window per ingest run")
    parser.add_argument("--runs", type=int, default=10, help="latency probes")
    parser.add_argument("--requests", type=int, default=20_000, help="requests for the telemetry tax")
    args = parser.parse_args()
    if args.what in ("ingest", "all"):
        ingest("spans", args.seconds)
        ingest("usage", args.seconds)
    if args.what in ("latency", "all"):
        latency(args.runs)
    if args.what in ("tax", "all"):
        tax(args.requests)


if __name__ == "__main__":
    main()
