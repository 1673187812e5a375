"""Telemetry under real faults: real gateway and collector processes, real SIGKILLs.

Every test checks the ledger (the usage Parquet files) after both processes have stopped:
request ids against the `x-request-id` of every answered request, and token and cost sums
against what the clients were told.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import pytest

from gateway.testing.behaviour import MockBehaviour
from gateway.testing.mock_openai import create_mock_openai
from tests.conftest import free_port
from tests.e2e.processes import meterline_env, stop, wait_http_ok
from tests.servers import serve_in_thread

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

pytestmark = pytest.mark.e2e

KEY = "key-fault-bot-telemetry-01"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with serve_in_thread(create_mock_openai(MockBehaviour(accepted_keys={"sk-mock"}, record=False))) as url:
        yield url


@dataclass
class Traffic:
    """Answered requests: request id -> (prompt tokens, completion tokens)."""

    answered: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: int = 0
    progress: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, answered: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: len(self.answered) + self.failed >= answered, timeout=120)


class Stack:
    def __init__(self, root: Path, provider: str, spool_flush_ms: int = 50, more_agents: str = "") -> None:
        self.root = root
        self.data = root / "data"
        self.collector_port, self.gateway_port = free_port(), free_port()
        self.config = root / "meterline.yaml"
        self.config.write_text(
            f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
agents:
  - {{id: fault-bot, team: a, key: {KEY}}}
{more_agents}
telemetry: {{collector: "http://127.0.0.1:{self.collector_port}", export_interval_ms: 100,
             spool_flush_ms: {spool_flush_ms}}}
"""
        )
        self.env = meterline_env()
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, verb: str, port: int, ready: str, *extra: str) -> subprocess.Popen[bytes]:
        args = ["--config", str(self.config), "--data-dir", str(self.data), verb, "--port", str(port), *extra]
        log = open(self.root / f"{verb}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "meterline", *args], cwd=self.root, env=self.env, stdout=log, stderr=log
        )
        log.close()
        self.processes.append(process)
        wait_http_ok(f"http://127.0.0.1:{port}{ready}", process)
        return process

    def collector(self) -> subprocess.Popen[bytes]:
        return self._start("collector", self.collector_port, "/health", "--grpc-port", "0")

    def gateway(self) -> subprocess.Popen[bytes]:
        return self._start("gateway", self.gateway_port, "/health/readiness")

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def run_traffic(
        self,
        n: int,
        concurrency: int = 16,
        tolerate_errors: bool = False,
        pause_s: float = 0.0,
        until: threading.Event | None = None,
        retry_errors: bool = False,
    ) -> tuple[Traffic, threading.Thread]:
        """`n` requests from `concurrency` clients, each pausing `pause_s` after every answer;
        with `until`, the clients stop early once it is set; with `retry_errors`, a failed
        request is counted and sent again (as a new request) until it is answered."""
        traffic = Traffic()
        url = f"http://127.0.0.1:{self.gateway_port}/v1/chat/completions"

        async def worker(client: httpx.AsyncClient, numbers: Iterator[int]) -> None:
            for i in numbers:
                if until is not None and until.is_set():
                    return
                body = {"model": "gpt", "messages": [{"role": "user", "content": f"question {i} " + "why " * (i % 7)}]}
                response: httpx.Response | None = None
                while response is None:
                    try:
                        response = await client.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"})
                        response.raise_for_status()
                    except httpx.HTTPError:
                        response = None
                        if not (tolerate_errors or retry_errors):
                            raise
                        with traffic.progress:
                            traffic.failed += 1
                            traffic.progress.notify_all()
                        if not retry_errors:
                            break
                        await asyncio.sleep(0.05)  # the gateway is restarting
                if response is None:
                    continue
                usage = response.json()["usage"]
                with traffic.progress:
                    traffic.answered[response.headers["x-request-id"]] = (
                        usage["prompt_tokens"],
                        usage["completion_tokens"],
                    )
                    traffic.progress.notify_all()
                if pause_s:
                    await asyncio.sleep(pause_s)

        async def main() -> None:
            numbers = iter(range(n))
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                await asyncio.gather(*(worker(client, numbers) for _ in range(concurrency)))

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        return traffic, thread

    def ledger(self) -> list[tuple[str, int, int, float]]:
        glob = str(self.data / "usage" / "*" / "*.parquet")
        rows = duckdb.connect().execute(
            f"SELECT request_id, input_tokens, output_tokens, cost_usd FROM read_parquet('{glob}')"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows.fetchall()]


def price(prompt_tokens: int, completion_tokens: int) -> float:
    prompt, completion = litellm.cost_per_token(
        model="gpt-4o-mini", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    return float(prompt) + float(completion)


def assert_exact(ledger: list[tuple[str, int, int, float]], answered: dict[str, tuple[int, int]]) -> None:
    ids = [row[0] for row in ledger]
    assert len(ids) == len(set(ids)), "duplicate request_ids in the ledger"
    assert set(ids) == set(answered)
    assert sum(r[1] for r in ledger) == sum(p for p, _ in answered.values())
    assert sum(r[2] for r in ledger) == sum(c for _, c in answered.values())
    expected_cost = math.fsum(price(p, c) for p, c in answered.values())
    assert round(math.fsum(r[3] for r in ledger), 9) == round(expected_cost, 9)


N_KILLS = 5000


def test_collector_sigkilled_three_times_loses_and_duplicates_nothing(tmp_path: Path, provider: str) -> None:
    """5,000 requests while the collector is SIGKILLed and restarted three times."""
    stack = Stack(tmp_path, provider)
    try:
        collector = stack.collector()
        gateway = stack.gateway()
        traffic, thread = stack.run_traffic(N_KILLS)
        for k in (1, 2, 3):
            traffic.wait_for(N_KILLS * k // 4)
            collector.kill()
            collector.wait()
            collector = stack.collector()
        thread.join(timeout=300)
        assert not thread.is_alive() and traffic.failed == 0
        assert stop(gateway) == 0  # drains its spool into the collector
        assert stop(collector) == 0  # publishes its WAL
    finally:
        stack.kill_all()
    assert len(traffic.answered) == N_KILLS
    assert_exact(stack.ledger(), traffic.answered)


def test_collector_down_for_60_s_during_steady_traffic(tmp_path: Path, provider: str) -> None:
    """The issue's 60 s outage. Two clients pause 0.1 s after each answer, so the gateway serves a
    steady trickle (about 15 requests/s here) that keeps the test's CPU cost small while the spool
    grows and the exporter backs off and retries for a full minute. The sleep is the outage, not a
    synchronisation; the traffic stops once 100 requests have been answered after the return."""
    stack = Stack(tmp_path, provider)
    done = threading.Event()
    try:
        collector = stack.collector()
        gateway = stack.gateway()
        traffic, thread = stack.run_traffic(100_000, concurrency=2, pause_s=0.1, until=done)
        traffic.wait_for(50)
        stop(collector, signal.SIGKILL)
        answered_before = len(traffic.answered)
        threading.Event().wait(60.0)
        answered_during = len(traffic.answered) - answered_before
        assert answered_during > 0  # the gateway kept serving
        assert any((stack.data / "spool").glob("*/seg-*.log"))
        collector = stack.collector()
        traffic.wait_for(answered_before + answered_during + 100)
        done.set()
        thread.join(timeout=60)
        assert not thread.is_alive() and traffic.failed == 0
        assert stop(gateway) == 0
        assert stop(collector) == 0
    finally:
        done.set()
        stack.kill_all()
    assert_exact(stack.ledger(), traffic.answered)


def test_gateway_sigkilled_mid_traffic_resends_its_spool(tmp_path: Path, provider: str) -> None:
    """Bound checked: with `spool_flush_ms: 0` a response's last byte waits for its record's
    fsync, so zero answered requests may be missing (with the default 50 ms window the loss is
    bounded by the records of the last window, which no timing-free test can pin down). Requests
    cut off by the kill may or may not be in the ledger; none may be there twice."""
    stack = Stack(tmp_path, provider, spool_flush_ms=0)
    try:
        collector = stack.collector()
        gateway = stack.gateway()
        traffic, thread = stack.run_traffic(3000, tolerate_errors=True)
        traffic.wait_for(1500)
        gateway.kill()
        gateway.wait()
        thread.join(timeout=120)
        gateway = stack.gateway()  # resends the unacknowledged part of its spool
        assert stop(gateway) == 0
        assert stop(collector) == 0
    finally:
        stack.kill_all()
    ledger = stack.ledger()
    ids = [row[0] for row in ledger]
    assert len(ids) == len(set(ids)), "duplicate request_ids in the ledger"
    assert set(traffic.answered) <= set(ids)
    assert len(ids) - len(traffic.answered) <= traffic.failed  # only cut-off requests beyond those answered
    answered_rows = [row for row in ledger if row[0] in traffic.answered]
    assert_exact(answered_rows, traffic.answered)


def test_gateway_sigkilled_three_times_at_the_defaults_loses_no_answered_request(tmp_path: Path, provider: str) -> None:
    """At the default `spool_flush_ms: 50`, a usage record is written to the spool file before its
    response completes: three SIGKILLs of the gateway during 3,000 requests leave every answered
    request in the ledger exactly once. Clients resend what failed while the gateway was down
    (as new requests); those cut off by a kill may or may not be billed, never twice."""
    n = 3000
    stack = Stack(tmp_path, provider)
    try:
        collector = stack.collector()
        gateway = stack.gateway()
        traffic, thread = stack.run_traffic(n, retry_errors=True)
        for k in (1, 2, 3):
            traffic.wait_for(n * k // 4)
            gateway.kill()
            gateway.wait()
            gateway = stack.gateway()  # resends the unacknowledged part of its spool
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert stop(gateway) == 0
        assert stop(collector) == 0
    finally:
        stack.kill_all()
    assert len(traffic.answered) == n
    ledger = stack.ledger()
    ids = [row[0] for row in ledger]
    assert len(ids) == len(set(ids)), "duplicate request_ids in the ledger"
    assert set(traffic.answered) <= set(ids)
    assert len(ids) - n <= traffic.failed  # only cut-off requests beyond those answered
    assert_exact([row for row in ledger if row[0] in traffic.answered], traffic.answered)


def test_a_lone_surrogate_model_name_is_billed_repaired_and_the_next_100_requests_too(
    tmp_path: Path, provider: str
) -> None:
    """`{"model": "\\ud800"}` is valid JSON: all 101 requests (it and the 100 after it) are in the
    ledger, whatever status the bad one was answered with (a 404 meters the name, which the
    exporter repairs; a 400 refuses the body before the name reaches the record). A lone
    surrogate that does reach a record, from an agent's configured tag, is repaired (U+FFFD),
    flagged `text_repaired` and billed: 102 rows in all, one of them flagged (two on a 404)."""
    odd = '  - {id: odd-bot, team: a, key: key-odd-bot-0123456789, tags: {cost_center: "cc-\\ud800"}}'
    stack = Stack(tmp_path, provider, more_agents=odd)
    url = f"http://127.0.0.1:{stack.gateway_port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    try:
        collector = stack.collector()
        gateway = stack.gateway()
        with httpx.Client(timeout=30) as client:
            bad = client.post(
                url, content=b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}', headers=headers
            )
            assert bad.status_code in (400, 404)
            tagged = client.post(
                url,
                json={"model": "gpt", "messages": [{"role": "user", "content": "q"}]},
                headers={"Authorization": "Bearer key-odd-bot-0123456789"},
            )
            good = [
                client.post(
                    url, json={"model": "gpt", "messages": [{"role": "user", "content": f"q {i}"}]}, headers=headers
                )
                for i in range(100)
            ]
        assert [r.status_code for r in [tagged, *good]] == [200] * 101
        assert stop(gateway) == 0
        assert stop(collector) == 0
    finally:
        stack.kill_all()
    glob = str(stack.data / "usage" / "*" / "*.parquet")
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT request_id, model_requested, text_repaired, tags FROM read_parquet('{glob}') ORDER BY ts_start"
        )
        .fetchall()
    )
    assert len(rows) == 102
    by_id = {r[0]: (r[1], r[2]) for r in rows}
    assert {by_id[r.headers["x-request-id"]] for r in good} == {("gpt", False)}
    assert by_id[tagged.headers["x-request-id"]] == ("gpt", True)
    assert [dict(r[3]) for r in rows if r[0] == tagged.headers["x-request-id"]] == [{"cost_center": "cc-\ufffd"}]
    if bad.status_code == 404:  # the name reached the record
        assert by_id[bad.headers["x-request-id"]] == ("\ufffd", True)
    assert sum(1 for _, flagged in by_id.values() if flagged) == (2 if bad.status_code == 404 else 1)
