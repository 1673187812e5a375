"""A ledger where an agent's own spans and the gateway's share a trace, for the trace explorer's
tests (analytics/traces, `meterline traces|trace|sql`, the Traces page).

Written the way production writes it: a real collector (in a thread) receives the agent's spans
from the OpenTelemetry SDK's OTLP/HTTP exporter, and the gateway's spans (built by the
gateway's own span encoder) and usage records as OTLP protobuf; the collector's WAL and writer
publish the Parquet. Ids and times are fixed, so tests can compare exact rows.

- Trace A (support-bot, t0): the agent's `handle ticket` > `call llm` > the gateway's
  `chat gpt-4o-mini` server span > two upstream attempts (a 500, then a retry that answers);
  then the agent's `post reply`.
- Trace B (research-agent, t0 + 60 s): gateway only; gpt-4o fails twice (503), then the
  fallback gpt-4o-mini answers.
- Trace C (billing-bot, t0 - 3 h): one failed request (502), no tokens, no cost.
- Trace D (triage-bot, t0 + 120 s): a usage record whose spans were sampled out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourcePb
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from gateway.routing.deployments import Deployment
from gateway.routing.router import Attempt
from gateway.telemetry.spans import attempt_span, attributes, server_span
from meterline.otlp_usage import to_log_record
from meterline.usage_record import UsageRecord
from tests.collector.otlp_fixtures import gateway_id, logs_request, running_collector

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B = "5c0ffee05c0ffee05c0ffee05c0ffee0"
TRACE_C = "6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d"
TRACE_D = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e"
REQUEST_A, REQUEST_B, REQUEST_C, REQUEST_D = (gateway_id(n) for n in (0xA, 0xB, 0xC, 0xD))
AGENT_KEY = "sk-meterline-support-bot-7f3a9c2e41b8"
"""The agent's key: the gateway never writes it, so nothing shown may hold it."""
PROVIDER_KEY = "sk-proj-provider-5d1e0b7c9a"


@dataclass(frozen=True)
class TraceLedger:
    data_dir: Path
    t0: dt.datetime
    records: dict[str, UsageRecord]
    """By request id."""


class _FixedIds(IdGenerator):
    """The agent SDK's ids, in the order its spans start."""

    def __init__(self, trace_id: str, span_ids: list[str]) -> None:
        self._trace_id = int(trace_id, 16)
        self._span_ids = [int(s, 16) for s in span_ids]

    def generate_trace_id(self) -> int:
        return self._trace_id

    def generate_span_id(self) -> int:
        return self._span_ids.pop(0)


def _ns(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000) * 1000


def _deployment(group: str, model: str) -> Deployment:
    return Deployment(
        id=f"{group}#0", group=group, litellm_model=f"openai/{model}", provider="openai", model=model,
        api_base="http://provider.invalid/v1", api_key=None, direct=True,
    )  # fmt: skip


def _attempt(
    group: str, model: str, start: dt.datetime, ms: tuple[int, int], status: int, error: str | None
) -> Attempt:
    outcome = "ok" if error is None else ("retryable_error" if status in (429, 500, 503) else "terminal_error")
    return Attempt(
        deployment=_deployment(group, model),
        started_ns=_ns(start + dt.timedelta(milliseconds=ms[0])),
        ended_ns=_ns(start + dt.timedelta(milliseconds=ms[1])),
        outcome=outcome,
        status=status,
        error=error,
    )


def _record(
    request_id: str, trace_id: str, span_id: str, start: dt.datetime, latency_ms: float, **fields: Any
) -> UsageRecord:
    values: dict[str, Any] = {
        "operation": "chat", "model_requested": "gpt-4o-mini", "model": "gpt-4o-mini", "provider": "openai",
        "price_version": "litellm-1.106.2", "env": "test", "tenant": "default", "gateway_instance": "gw-test:1",
        **fields,
    }  # fmt: skip
    return UsageRecord(
        request_id=request_id,
        trace_id=trace_id,
        span_id=span_id,
        ts_start=start,
        ts_end=start + dt.timedelta(milliseconds=latency_ms),
        latency_ms=latency_ms,
        date=start.date(),
        key_alias=f"{values['agent_id']}-key",
        **values,
    )


def _with_id(span: Span, span_id: str) -> Span:
    span.span_id = bytes.fromhex(span_id)
    return span


def _gateway_request(spans: list[Span]) -> ExportTraceServiceRequest:
    resource = ResourcePb(
        attributes=attributes({"service.name": "meterline-gateway", "service.instance.id": "gw-test:1"})
    )
    scope = ScopeSpans(scope=InstrumentationScope(name="meterline.gateway"), spans=spans)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])])


def _agent_spans(url: str, t0: dt.datetime) -> None:
    """The agent's own spans through the OpenTelemetry SDK and its OTLP/HTTP exporter."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-agent"}),
        id_generator=_FixedIds(TRACE_A, ["a1a1a1a1a1a1a1a1", "a2a2a2a2a2a2a2a2", "a3a3a3a3a3a3a3a3"]),
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    tracer = provider.get_tracer("support-agent")

    def at(ms: int) -> int:
        return _ns(t0 + dt.timedelta(milliseconds=ms))

    root = tracer.start_span("handle ticket", start_time=at(0), attributes={"ticket.id": "T-1042"})
    inside = otel_trace.set_span_in_context(root)
    call = tracer.start_span("call llm", context=inside, kind=otel_trace.SpanKind.CLIENT, start_time=at(100),
                             attributes={"http.request.method": "POST"})  # fmt: skip
    call.end(end_time=at(2600))
    reply = tracer.start_span("post reply", context=inside, start_time=at(2650))
    reply.end(end_time=at(2900))
    root.end(end_time=at(3000))
    provider.shutdown()


def build_trace_ledger(data_dir: Path, **collector_settings: Any) -> TraceLedger:
    """`collector_settings`: further CollectorSettings fields (`storage_url` for an S3 ledger)."""
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    ms = dt.timedelta(milliseconds=1)
    a_start, b_start, c_start, d_start = (
        t0 + 120 * ms, t0 + dt.timedelta(seconds=60), t0 - dt.timedelta(hours=3), t0 + dt.timedelta(seconds=120),
    )  # fmt: skip
    records = {
        REQUEST_A: _record(REQUEST_A, TRACE_A, "b1b1b1b1b1b1b1b1", a_start, 2460.0, agent_id="support-bot",
                           team="support", project="helpdesk", input_tokens=1200, output_tokens=345,
                           cost_usd=0.000387, attempts=2, tags={"cost_center": "cc-102"}),
        REQUEST_B: _record(REQUEST_B, TRACE_B, "b2b2b2b2b2b2b2b2", b_start, 1800.0, agent_id="research-agent",
                           team="research", model_requested="gpt-4o", input_tokens=800, output_tokens=200,
                           cost_usd=0.00024, attempts=3, fallback_used=True),
        REQUEST_C: _record(REQUEST_C, TRACE_C, "b3b3b3b3b3b3b3b3", c_start, 300.0, agent_id="billing-bot",
                           team="finance", model_requested="gpt-4o", model=None, provider=None,
                           price_version=None, status="error", http_status=502,
                           error_type="upstream_http_502", attempts=1),
        REQUEST_D: _record(REQUEST_D, TRACE_D, "b4b4b4b4b4b4b4b4", d_start, 500.0, agent_id="triage-bot",
                           team="support", input_tokens=100, output_tokens=50, cost_usd=0.000045),
    }  # fmt: skip
    a, b, c = records[REQUEST_A], records[REQUEST_B], records[REQUEST_C]
    gateway_spans = [
        server_span(a, parent_span_id="a2a2a2a2a2a2a2a2", route="/v1/chat/completions", response_id="chatcmpl-a",
                    finish_reasons=["stop"]),
        _with_id(attempt_span(a, _attempt("gpt-4o-mini", "gpt-4o-mini", t0, (130, 400), 500, "upstream_http_500")),
                 "c1c1c1c1c1c1c1c1"),
        _with_id(attempt_span(a, _attempt("gpt-4o-mini", "gpt-4o-mini", t0, (460, 2570), 200, None)),
                 "c2c2c2c2c2c2c2c2"),
        server_span(b, parent_span_id=None, route="/v1/chat/completions", response_id="chatcmpl-b",
                    finish_reasons=["stop"]),
        _with_id(attempt_span(b, _attempt("gpt-4o", "gpt-4o", b_start, (5, 200), 503, "upstream_http_503")),
                 "d1d1d1d1d1d1d1d1"),
        _with_id(attempt_span(b, _attempt("gpt-4o", "gpt-4o", b_start, (260, 500), 503, "upstream_http_503")),
                 "d2d2d2d2d2d2d2d2"),
        _with_id(attempt_span(b, _attempt("gpt-4o-mini", "gpt-4o-mini", b_start, (560, 1790), 200, None)),
                 "d3d3d3d3d3d3d3d3"),
        server_span(c, parent_span_id=None, route="/v1/chat/completions"),
        _with_id(attempt_span(c, _attempt("gpt-4o", "gpt-4o", c_start, (10, 290), 502, "upstream_http_502")),
                 "e1e1e1e1e1e1e1e1"),
    ]  # fmt: skip
    with running_collector(data_dir, **collector_settings) as url:
        _agent_spans(url, t0)
        protobuf = {"content-type": "application/x-protobuf"}
        sent = httpx.post(f"{url}/v1/traces", content=_gateway_request(gateway_spans).SerializeToString(),
                          headers=protobuf)  # fmt: skip
        assert sent.status_code == 200, sent.text
        logs = logs_request(*(to_log_record(r) for r in records.values())).SerializeToString()
        sent = httpx.post(f"{url}/v1/logs", content=logs, headers=protobuf)
        assert sent.status_code == 200, sent.text
    return TraceLedger(data_dir, t0, records)
