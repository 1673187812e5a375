from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from collector import grpc_receiver
from collector.catalog import open_catalog
from meterline import semconv
from meterline.layout import DataLayout
from meterline.otlp_usage import to_log_record
from tests.collector.otlp_fixtures import logs_request, make_usage, read_rows, running_collector
from tests.conftest import free_port


@pytest.fixture
def grpc_port() -> int:
    return free_port()


@pytest.fixture
def channel(grpc_port: int) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
        yield ch


def _retry_delay_s(error: grpc.RpcError) -> int | None:
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if details is None:
        return None
    status = status_pb2.Status.FromString(details)
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return int(info.retry_delay.seconds)
    return None


def test_an_agents_sdk_exports_spans_over_grpc_into_the_spans_view(tmp_path: Path, grpc_port: int) -> None:
    with running_collector(tmp_path, grpc_port=grpc_port):
        provider = TracerProvider(resource=Resource.create({"service.name": "research-agent"}))
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("tests.collector.grpc")
        with tracer.start_as_current_span("plan") as root:
            attributes: dict[str, AttributeValue] = {
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 640,
                semconv.METERLINE_AGENT_ID: "research-agent",
            }
            with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes):
                pass
        provider.shutdown()

    trace_id = format(root.get_span_context().trace_id, "032x")
    with open_catalog(DataLayout.at(tmp_path)) as con:
        rows = con.execute(
            "SELECT name, kind, service_name, input_tokens, trace_id FROM spans ORDER BY name"
        ).fetchall()
    assert rows == [
        ("chat gpt-4o", "CLIENT", "research-agent", 640, trace_id),
        ("plan", "INTERNAL", "research-agent", None, trace_id),
    ]


def test_usage_over_grpc_is_deduplicated_and_partially_rejected(
    tmp_path: Path, grpc_port: int, channel: grpc.Channel
) -> None:
    bad = to_log_record(make_usage("req-bad"))
    kept = [kv for kv in bad.attributes if kv.key != "team"]
    del bad.attributes[:]
    bad.attributes.extend(kept)
    stub = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
    with running_collector(tmp_path, grpc_port=grpc_port) as url:
        first = stub.Export(logs_request(to_log_record(make_usage("req-1")), bad), timeout=10)
        again = stub.Export(logs_request(*(to_log_record(make_usage(i)) for i in ("req-1", "req-2"))), timeout=10)
        assert url.startswith("http://")

    assert isinstance(first, ExportLogsServiceResponse)
    assert (first.partial_success.rejected_log_records, first.partial_success.error_message) == (
        1,
        "resource_logs[0].scope_logs[0].log_records[1]: missing required attribute 'team'",
    )
    assert not again.HasField("partial_success")
    rows = read_rows(DataLayout.at(tmp_path), "usage")
    assert sorted((r["request_id"], r["input_tokens"], r["cost_usd"]) for r in rows) == [
        ("req-1", 1200, 0.000387),
        ("req-2", 1200, 0.000387),
    ]


def test_bad_and_oversized_messages_get_their_grpc_codes(tmp_path: Path, grpc_port: int, channel: grpc.Channel) -> None:
    limit = 2048
    raw_export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="x" * limit)
    big = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    with running_collector(tmp_path, max_body_bytes=limit, grpc_port=grpc_port):
        with pytest.raises(grpc.RpcError) as garbage:
            raw_export(b"\xff\xff not a protobuf", timeout=10)
        with pytest.raises(grpc.RpcError) as too_big:
            TraceServiceStub(channel).Export(big, timeout=10)  # type: ignore[no-untyped-call]
        empty = TraceServiceStub(channel).Export(ExportTraceServiceRequest(), timeout=10)  # type: ignore[no-untyped-call]

    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "body is not a protobuf ExportTraceServiceRequest" in garbage.value.details()
    assert _retry_delay_s(garbage.value) is None
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _retry_delay_s(too_big.value) is None  # not retryable: the same message would be refused again
    assert empty == ExportTraceServiceResponse()
    assert read_rows(DataLayout.at(tmp_path), "spans") == []


def test_a_full_disk_is_unavailable_with_retry_info_and_recovers(
    tmp_path: Path, grpc_port: int, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC is injected at the WAL's fdatasync, as in the HTTP test of the same name."""
    real_fdatasync = os.fdatasync
    disk_full = True

    def fdatasync(fd: int) -> None:
        if disk_full:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    stub = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
    with running_collector(tmp_path, grpc_port=grpc_port):
        with pytest.raises(grpc.RpcError) as refused:
            stub.Export(logs_request(to_log_record(make_usage("req-1"))), timeout=10)
        disk_full = False
        stub.Export(logs_request(*(to_log_record(make_usage(i)) for i in ("req-1", "req-2"))), timeout=10)

    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "No space left on device" in refused.value.details()
    assert _retry_delay_s(refused.value) == 5
    assert sorted(r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")) == ["req-1", "req-2"]


def test_a_taken_default_grpc_port_leaves_http_serving_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING), running_collector(tmp_path, grpc_port=port, grpc_required=False) as url:
            body = logs_request(to_log_record(make_usage("req-1"))).SerializeToString()
            response = httpx.post(f"{url}/v1/logs", content=body, headers={"content-type": "application/x-protobuf"})

    assert response.status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    (warning,) = warnings
    assert warning.startswith(f"collector: cannot listen for OTLP/gRPC on 127.0.0.1:{port}: Failed to bind")
    assert warning.endswith("; serving OTLP/HTTP only")
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")] == ["req-1"]


def test_an_unexpected_fault_in_one_call_is_internal_and_the_next_call_lands(
    tmp_path: Path, grpc_port: int, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export = grpc_receiver.export  # type: ignore[attr-defined]
    faults = [RuntimeError("boom")]

    async def export_failing_once(*args: Any) -> Any:
        if faults:
            raise faults.pop()
        return await real_export(*args)

    monkeypatch.setattr(grpc_receiver, "export", export_failing_once)
    stub = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
    with running_collector(tmp_path, grpc_port=grpc_port):
        with pytest.raises(grpc.RpcError) as failed:
            stub.Export(logs_request(to_log_record(make_usage("req-1"))), timeout=10)
        stub.Export(logs_request(to_log_record(make_usage("req-1"))), timeout=10)

    assert (failed.value.code(), failed.value.details()) == (
        grpc.StatusCode.INTERNAL,
        "the collector could not take this export",
    )
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")] == ["req-1"]
