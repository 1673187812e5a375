"""The exporter against a scripted collector on a real socket, through the on-disk spool production
uses: what is accepted, retried, repaired, set aside, held, dropped, logged and kept; that no
bad item stops a loop; and that batches share one kept-alive connection."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.telemetry.exporter import SpanDraft, TelemetryExporter
from gateway.telemetry.otlp_wire import usage_log_record
from gateway.telemetry.spool import DEAD_LETTER, Spool
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


def log_records(body: bytes) -> list[dict[str, object]]:
    records = ExportLogsServiceRequest.FromString(body).resource_logs[0].scope_logs[0].log_records
    return [{a.key: getattr(a.value, a.value.WhichOneof("value")) for a in r.attributes} for r in records]


def request_ids(body: bytes) -> list[str]:
    return [str(r["request_id"]) for r in log_records(body)]


async def exporter_for(
    url: str, root: Path, n: int, timeout_s: float = 10.0, interval_s: float = 3600,
    max_bytes: int = 10**8, max_backlog: int = 100_000,
) -> TelemetryExporter:  # fmt: skip
    """An exporter on a real spool under `root` with `n` records submitted and fsync'd. A long
    interval: the test drives export_pending itself unless it passes a short one."""
    exporter = TelemetryExporter(
        url, {"service.name": "gw"}, spool=Spool(root, max_bytes),
        interval_s=interval_s, timeout_s=timeout_s, flush_ms=0, max_backlog=max_backlog,
    )  # fmt: skip
    await exporter.start()
    for i in range(n):
        exporter.submit(make_usage(f"req-{i}"), None)
    await exporter.durable()
    return exporter


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (without a time bound of its own: pytest's timeout or the scenario's catches a hang)
    for something the background loops do."""
    while not condition():  # noqa: ASYNC110 - the exporter's counters signal nothing
        await asyncio.sleep(0.01)


def dead_letters(root: Path) -> list[dict[str, str]]:
    path = next(root.glob(f"*/{DEAD_LETTER}"), None)
    return [json.loads(line) for line in path.read_text().splitlines()] if path else []


def test_a_retryable_answer_keeps_the_batch_and_the_next_export_sends_it_again_on_the_same_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    partial = ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(rejected_log_records=1, error_message="bad record")
    ).SerializeToString()

    async def script(n: int) -> bytes:
        return answer(503) if n == 1 else answer(200, partial)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, tmp_path, 3)
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


def test_a_refused_record_is_set_aside_and_the_rest_of_its_batch_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The collector refuses any body holding req-1: the batch is halved until req-1 stands
    alone; it goes to the dead-letter file, the other three to the collector."""
    accepted: list[str] = []

    async def script(n: int) -> bytes:
        return answer(200)

    async def scenario() -> None:
        async with Collector(script) as collector:

            async def refuse_req_1(n: int) -> bytes:
                ids = request_ids(collector.bodies[-1])
                if "req-1" in ids:
                    return answer(400, b"no")
                accepted.extend(ids)
                return answer(200)

            collector.script = refuse_req_1
            exporter = await exporter_for(collector.url, tmp_path, 4)
            assert await exporter.export_pending() is True
            assert (exporter.pending, exporter.exported_usage, exporter.failed_exports) == (0, 3, 3)
            assert exporter.counts == {"set_aside": 1}
            await exporter.close()
            assert [request_ids(b) for b in collector.bodies] == [
                ["req-0", "req-1", "req-2", "req-3"], ["req-0", "req-1"], ["req-0"], ["req-1"], ["req-2", "req-3"],
            ]  # fmt: skip

    with caplog.at_level(logging.ERROR, logger="gateway.telemetry.exporter"):
        asyncio.run(scenario())
    assert accepted == ["req-0", "req-2", "req-3"]
    (entry,) = dead_letters(tmp_path)
    assert entry["reason"] == "refused by the collector"
    assert b"req-1" in base64.b64decode(entry["log_record_b64"])
    assert [r.getMessage() for r in caplog.records] == ["telemetry: collector refused a batch with 400"]


def test_an_unreachable_or_silent_collector_keeps_the_records_for_a_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def silent(n: int) -> bytes:
        await asyncio.sleep(5)
        return answer(200)

    async def scenario() -> None:
        url = f"http://127.0.0.1:{free_port()}"
        exporter = await exporter_for(url, tmp_path / "a", 2)
        assert await exporter.export_pending() is False
        assert (exporter.pending, exporter.failed_exports) == (2, 1)
        await exporter.close(deadline_s=0.3)
        async with Collector(silent) as collector:
            exporter = await exporter_for(collector.url, tmp_path / "b", 2, timeout_s=0.2)
            assert await exporter.export_pending() is False
            assert (exporter.pending, exporter.failed_exports) == (2, 1)
            await exporter.close(deadline_s=0.3)

    with caplog.at_level(logging.WARNING, logger="gateway.telemetry.exporter"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("telemetry: export to http://127.0.0.1:")
    assert "/v1/logs failed (could not connect to 127.0.0.1:" in messages[0]
    assert any(m.endswith("/v1/logs failed (timed out); will retry") for m in messages)


def test_a_reply_that_is_not_protobuf_does_not_stop_the_sender(tmp_path: Path) -> None:
    """The first answer is 200 with a body that is not an ExportLogsServiceResponse: the sender
    loop (running on its own, not driven by the test) takes it as accepted and sends the
    records submitted later."""

    async def script(n: int) -> bytes:
        return answer(200, b"\xff\xff not protobuf") if n == 1 else answer(200)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, tmp_path, 3, interval_s=0.05)
            await eventually(lambda: len(collector.bodies) == 1)
            for i in range(3, 5):
                exporter.submit(make_usage(f"req-{i}"), None)
            await eventually(lambda: exporter.exported_usage == 5)
            await exporter.close()
            assert [request_ids(b) for b in collector.bodies] == [["req-0", "req-1", "req-2"], ["req-3", "req-4"]]
            assert (exporter.counts, exporter.pending) == ({"bad_reply": 1}, 0)

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_an_unexpected_error_in_the_sender_is_counted_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def script(n: int) -> bytes:
        return answer(200)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, tmp_path, 2, interval_s=0.05)
            wrap = exporter._wrap_logs
            calls = 0

            def fail_once(records: list[bytes]) -> bytes:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise RuntimeError("boom")
                return wrap(records)

            exporter._wrap_logs = fail_once  # type: ignore[method-assign,assignment]
            await eventually(lambda: exporter.exported_usage == 2)
            await exporter.close()
            assert [request_ids(b) for b in collector.bodies] == [["req-0", "req-1"]]
            assert exporter.counts == {"loop_error": 1}

    with caplog.at_level(logging.ERROR, logger="gateway.telemetry.exporter"):
        asyncio.run(asyncio.wait_for(scenario(), 60))
    assert [r.getMessage() for r in caplog.records] == ["telemetry: export failed; continuing"]


def test_text_that_cannot_be_encoded_is_repaired_flagged_and_billed(tmp_path: Path) -> None:
    """A lone surrogate in the model name and in a tag: the record is repaired (U+FFFD), flagged
    and delivered; the records after it too (the spool writer did not die)."""
    bad = dataclasses.replace(make_usage("req-bad"), model_requested="\ud800", tags={"k\udc00": "v\ud800x"})

    async def script(n: int) -> bytes:
        return answer(200)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, tmp_path, 0)
            exporter.submit(bad, None)
            for i in range(3):
                exporter.submit(make_usage(f"req-{i}"), None)
            await exporter.durable()
            assert await exporter.export_pending() is True
            await exporter.close()
            (body,) = collector.bodies
            records = log_records(body)
            assert [r["request_id"] for r in records] == ["req-bad", "req-0", "req-1", "req-2"]
            assert [(r["model_requested"], r["text_repaired"]) for r in records] == [
                ("\ufffd", True),
                *[(make_usage("x").model_requested, False)] * 3,
            ]
            assert exporter.counts == {"repaired": 1}

    asyncio.run(scenario())


def test_the_span_of_a_repaired_record_carries_the_repaired_text(tmp_path: Path) -> None:
    """The span draft shares the record: it is exported with the repaired model name, and a
    draft whose own text cannot be encoded (a lone surrogate in finish_reasons) is dropped and
    counted while the sender goes on."""
    bad = dataclasses.replace(make_usage("req-bad"), model_requested="\ud800")
    broken = SpanDraft(make_usage("req-1"), None, "/v1/chat/completions", finish_reasons=("\udc00",))

    async def script(n: int) -> bytes:
        return answer(200)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, tmp_path, 0)
            exporter.submit(bad, SpanDraft(bad, None, "/v1/chat/completions"))
            exporter.submit(make_usage("req-1"), broken)
            exporter.submit(make_usage("req-2"), SpanDraft(make_usage("req-2"), None, "/v1/chat/completions"))
            await exporter.durable()
            assert await exporter.export_pending() is True
            await exporter.close()
            logs, traces = collector.bodies
            assert request_ids(logs) == ["req-bad", "req-1", "req-2"]
            spans = ExportTraceServiceRequest.FromString(traces).resource_spans[0].scope_spans[0].spans
            assert [s.name for s in spans] == ["chat \ufffd", f"chat {make_usage('x').model_requested}"]
            assert exporter.counts == {"repaired": 1, "span_dropped": 1}

    asyncio.run(scenario())


def test_a_record_that_cannot_be_encoded_at_all_is_set_aside_and_the_rest_delivered(tmp_path: Path) -> None:
    broken = dataclasses.replace(make_usage("req-broken"), trace_id="not hex")

    async def script(n: int) -> bytes:
        return answer(200)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, tmp_path, 1)
            exporter.submit(broken, None)
            exporter.submit(make_usage("req-1"), None)
            await exporter.durable()
            assert await exporter.force_flush() is True  # the dead-letter entry is written
            assert await exporter.export_pending() is True
            await exporter.close()
            assert [request_ids(b) for b in collector.bodies] == [["req-0", "req-1"]]
            assert exporter.counts == {"set_aside": 1}

    asyncio.run(scenario())
    (entry,) = dead_letters(tmp_path)
    assert entry["reason"] == "cannot encode: ValueError"
    assert json.loads(entry["record"])["request_id"] == "req-broken"


def test_what_a_full_spool_cannot_take_waits_in_a_bounded_backlog_and_the_excess_is_counted(
    tmp_path: Path,
) -> None:
    """The spool holds 3 records: the 4th and 5th wait in memory (max_backlog 2), the 6th is
    dropped and counted. Once the collector acknowledges the first 3, the held ones follow."""
    frame_bytes = 8 + len(usage_log_record(make_usage("req-0")))

    async def script(n: int) -> bytes:
        return answer(200)

    async def scenario() -> None:
        async with Collector(script) as collector:
            exporter = await exporter_for(collector.url, tmp_path, 0, max_bytes=3 * frame_bytes, max_backlog=2)
            for i in range(6):
                exporter.submit(make_usage(f"req-{i}"), None)
            assert (exporter.backlog, exporter.counts) == (2, {"held": 2, "usage_dropped": 1})
            assert exporter.accepting is False  # the request path answers 503 meanwhile
            assert await exporter.force_flush() is False  # the backlog waits for room
            assert await exporter.export_pending() is True
            assert exporter.backlog == 2  # the spool had no room until this acknowledgement
            assert await exporter.force_flush() is True
            assert (exporter.backlog, exporter.accepting) == (0, True)
            assert await exporter.export_pending() is True
            await exporter.close()
            assert [request_ids(b) for b in collector.bodies] == [["req-0", "req-1", "req-2"], ["req-3", "req-4"]]

    asyncio.run(scenario())
