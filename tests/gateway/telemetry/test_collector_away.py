"""A real gateway whose collector is away (a closed port): traffic and the shutdown grace log a
line per interval, with how many were not logged, and the sender backs off instead of
reconnecting in a tight loop (it used to try ~1,000 times a second in the grace)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import gateway.telemetry.exporter as exporter_module
from gateway.app import create_app
from gateway.telemetry.exporter import TelemetryExporter
from meterline.config import parse_config
from meterline.log_limit import LogLimiter
from tests.conftest import free_port
from tests.servers import serve_in_thread

KEY = "agent-key-away-0123456789"
GRACE_S = 1.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_a_gateway_without_its_collector_logs_a_line_per_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(exporter_module, "LogLimiter", lambda logger: LogLimiter(logger, clock=clock))
    close = TelemetryExporter.close

    async def close_soon(self: TelemetryExporter, deadline_s: float = 10.0) -> None:
        await close(self, deadline_s=GRACE_S)

    monkeypatch.setattr(TelemetryExporter, "close", close_soon)
    collector = f"http://127.0.0.1:{free_port()}"
    config = parse_config(
        f"""
model_list:
  - model_name: demo
    litellm_params: {{model: openai/gpt-4o-mini, mock_response: hello}}
agents:
  - {{id: bot, team: t, key: {KEY}}}
telemetry: {{collector: "{collector}", export_interval_ms: 20}}
storage: {{data_dir: "{tmp_path}"}}
""",
        "away.yaml",
        environ={},
    )
    app = create_app(config)
    exporter = app.state.gateway.exporter
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
    with caplog.at_level(logging.WARNING), serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        for second in (0.0, 10.0, 20.0):  # three log intervals of traffic
            clock.now = second
            tried = exporter.failed_exports
            for _ in range(5):
                assert client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
            wait_until(lambda tried=tried: exporter.failed_exports >= tried + 2)  # type: ignore[misc]
        before_shutdown = exporter.failed_exports
    lines = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    failed = re.escape(f"WARNING gateway.telemetry.exporter: telemetry: export to {collector}/v1/") + (
        r"(logs|traces) failed \(could not connect to 127\.0\.0\.1:\d+: .+\); will retry"
    )
    assert len(lines) == 4, lines
    assert re.fullmatch(failed, lines[0]), lines[0]
    for line in lines[1:3]:
        assert re.fullmatch(failed + r" \(\d+ more like this not logged\)", line), line
    pending = "30 records still pending at shutdown (collector unreachable)"  # 15 usage records, 15 spans
    assert lines[3] == f"ERROR gateway.telemetry.exporter: telemetry: {pending}"
    # The grace is retried with a backoff (0.1-1.5 s apart), not ~1,000 times a second.
    assert exporter.failed_exports - before_shutdown <= 15
