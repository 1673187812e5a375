"""The exporter's posting against a scripted collector on a real socket: what is accepted, retried,
dropped, logged and kept, and that batches share one kept-alive connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from gateway.telemetry.exporter import TelemetryExporter
from tests.collector.otlp_fixtures import make_usage
from tests.conftest import free_port

Answer = Callable[[int], Awaitable[bytes]]
"""The raw HTTP answer to the n-th request (1-based)."""


def answer(status: int, body: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body


class Collector:
    """Reads each POST whole, keeps its body, answers by script; counts connections."""

    def __init__(self, script: Answer) -> None:
        self.script = script
        self.connections = 0
        self.bodies: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Collector:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self._handlers.add(asyncio.current_task())  # type: ignore[arg-type]
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                    self.bodies.append(await reader.readexactly(length))
                    writer.write(await self.script(len(self.bodies)))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        # Connections the exporter closed end their handlers; a still silent one is cut short.
        _, pending = await asyncio.wait(self._handlers, timeout=1.0) if self._handlers else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def request_ids(body: bytes) -> list[str]:
    records = ExportLogsServiceRequest.FromString(body).resource_logs[0].scope_logs[0].log_records
    return [next(a.value.string_value for a in r.attributes if a.key == "request_id") for r in records]


async def exporter_for(url: str, n: int, timeout_s: float = 10.0) -> TelemetryExporter:
    # A long interval: the test drives export_pending itself.
    exporter = TelemetryExporter(url, {"service.name": "gw"}, interval_s=3600, timeout_s=timeout_s)
    await exporter.start()
    for i in range(n):
        exporter.submit(make_usage(f"req-{i}"), None)
    return exporter


def test_a_retryable_answer_keeps_the_batch_and_the_next_export_sends_it_again_on_the_same_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    partial = ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(rejected_log_records=1, error_message="bad record")
    ).SerializeToString()

    async def script(n: int) -> bytes:
        return answer(503) if n == 1 else answer(200, partial)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, 3)
            assert await exporter.export_pending() is False
            assert (exporter.pending, exporter.exported_usage, exporter.failed_exports) == (3, 0, 1)
            assert await exporter.export_pending() is True
            assert (exporter.pending, exporter.exported_usage, exporter.failed_exports) == (0, 3, 1)
            await exporter.close()
            assert [request_ids(b) for b in collector.bodies] == [["req-0", "req-1", "req-2"]] * 2
            assert collector.connections == 1

    with caplog.at_level(logging.WARNING, logger="gateway.telemetry.exporter"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        "telemetry: collector answered 503; will retry",
        "telemetry: collector rejected part of a batch: bad record",
    ]


def test_a_refused_batch_is_dropped_with_an_error(caplog: pytest.LogCaptureFixture) -> None:
    async def script(n: int) -> bytes:
        return answer(400, b"no")

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, 2)
            assert await exporter.export_pending() is True
            assert (exporter.pending, exporter.exported_usage, exporter.failed_exports) == (0, 2, 1)
            await exporter.close()
            assert len(collector.bodies) == 1

    with caplog.at_level(logging.ERROR, logger="gateway.telemetry.exporter"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == ["telemetry: collector refused a batch with 400; dropped"]


def test_an_unreachable_or_silent_collector_keeps_the_records_for_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    async def silent(n: int) -> bytes:
        await asyncio.sleep(5)
        return answer(200)

    async def scenario() -> None:
        url = f"http://127.0.0.1:{free_port()}"
        exporter = await exporter_for(url, 2)
        assert await exporter.export_pending() is False
        assert (exporter.pending, exporter.failed_exports) == (2, 1)
        await exporter.close(deadline_s=0.3)
        async with Collector(silent) as collector:
            exporter = await exporter_for(collector.url, 2, timeout_s=0.2)
            assert await exporter.export_pending() is False
            assert (exporter.pending, exporter.failed_exports) == (2, 1)
            await exporter.close(deadline_s=0.3)

    with caplog.at_level(logging.WARNING, logger="gateway.telemetry.exporter"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("telemetry: export to http://127.0.0.1:")
    assert "/v1/logs failed (could not connect to 127.0.0.1:" in messages[0]
    assert any(m.endswith("/v1/logs failed (timed out); will retry") for m in messages)
