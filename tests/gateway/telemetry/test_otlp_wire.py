"""The direct byte encoder must produce exactly the messages the protobuf runtime builds."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.routing.deployments import Deployment
from gateway.routing.router import Attempt
from gateway.telemetry import otlp_wire, spans
from gateway.telemetry.exporter import SpanDraft, TelemetryExporter
from gateway.telemetry.spool import Spool
from meterline.otlp_usage import from_log_record, to_log_record
from meterline.usage_record import UsageRecord

START = dt.datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=dt.UTC)
FULL = UsageRecord(
    request_id="req-1", trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331",
    ts_start=START, ts_end=START + dt.timedelta(milliseconds=1500), latency_ms=1500.0, ttft_ms=81.25,
    agent_id="support-bot", team="support", project="helpdesk", key_alias="sb-1",
    tags={"cost_center": "cc-102", "tier": "gold"}, operation="chat", model_requested="gpt-4o-mini",
    model="gpt-4o-mini-2024-07-18", provider="openai", stream=True, date=START.date(), input_tokens=1200,
    output_tokens=345, cache_read_input_tokens=1000, cache_creation_input_tokens=0, reasoning_output_tokens=64,
    usage_estimated=False, usage_raw='{"prompt_tokens":1200}', cost_usd=0.000387, price_version="litellm-1.106.2",
    provider_key_version="v3", status="ok", http_status=200, attempts=2, fallback_used=True, cache_hit=False,
    gateway_instance="gw-1", env="prod", tenant="default",
)  # fmt: skip
VARIANTS = [
    FULL,
    dataclasses.replace(FULL, request_id="req-2", project=None, ttft_ms=None, tags={}, usage_raw=None, cost_usd=0),
    dataclasses.replace(FULL, request_id="req-3", status="error", http_status=502, error_type="UpstreamError",
                        input_tokens=-1, cost_usd=12.5, usage_estimated=True, agent_id="ünïcode-bot"),
]  # fmt: skip


@pytest.mark.parametrize("record", VARIANTS, ids=lambda r: r.request_id)
def test_usage_log_records_match_the_protobuf_runtime(record: UsageRecord) -> None:
    encoded = otlp_wire.usage_log_record(record)
    assert LogRecord.FromString(encoded) == to_log_record(record)
    assert encoded == otlp_wire.usage_log_record(record)  # the cache returns the same bytes
    assert from_log_record(LogRecord.FromString(encoded)) == record.as_row()


def _attempt(outcome: str, status: int | None, error: str | None, direct: bool) -> Attempt:
    deployment = Deployment(
        id="openai-1", group="gpt", litellm_model="openai/gpt-4o-mini", provider="openai", model="gpt-4o-mini",
        api_base=None, api_key=None, direct=direct,
    )  # fmt: skip
    return Attempt(deployment, 1_741_944_413_000_000_000, 1_741_944_414_000_000_000, outcome, status, error)


@pytest.mark.parametrize("record", VARIANTS, ids=lambda r: r.request_id)
def test_spans_match_the_protobuf_runtime(record: UsageRecord) -> None:
    server = otlp_wire.server_span(
        record, parent_span_id="00f067aa0ba902b7", route="/v1/chat/completions", response_id="chatcmpl-1",
        finish_reasons=["stop", "length"],
    )  # fmt: skip
    expected = spans.server_span(
        record, parent_span_id="00f067aa0ba902b7", route="/v1/chat/completions", response_id="chatcmpl-1",
        finish_reasons=["stop", "length"],
    )  # fmt: skip
    assert Span.FromString(server) == expected
    root = otlp_wire.server_span(record, parent_span_id=None, route="/v1/embeddings")
    assert Span.FromString(root) == spans.server_span(record, parent_span_id=None, route="/v1/embeddings")
    for attempt in (_attempt("ok", 200, None, True), _attempt("retryable_error", 503, "APIError", False)):
        reference = spans.attempt_span(record, attempt)
        encoded = otlp_wire.attempt_span(record, attempt, reference.span_id.hex())
        assert Span.FromString(encoded) == reference


def test_the_exporters_trace_request_carries_every_span(tmp_path: Path) -> None:
    exporter = TelemetryExporter("http://127.0.0.1:9", {"service.name": "meterline-gateway"}, spool=Spool(tmp_path, 1))
    draft = SpanDraft(FULL, None, "/v1/chat/completions", attempts=(_attempt("ok", 200, None, True),) * 2)
    request = ExportTraceServiceRequest.FromString(exporter._encode_spans([draft, draft]))

    (resource_spans,) = request.resource_spans
    assert resource_spans.resource.attributes[0].value.string_value == "meterline-gateway"
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "meterline.gateway"
    server, client = ("chat gpt-4o-mini", 2), ("chat gpt-4o-mini", 3)
    assert [(s.name, s.kind) for s in scope_spans.spans] == [server, client, client] * 2
    assert len({s.span_id for s in scope_spans.spans}) == 5  # one server span id (twice), four attempts
