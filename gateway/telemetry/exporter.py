"""Ships spans and usage records to the collector over OTLP/HTTP protobuf, off the request path.

The request path only appends to in-memory lists (`submit`). A background task encodes and
posts batches every `interval` (or sooner when a batch fills), retries retryable failures with
backoff and jitter, and never raises into a request. Usage records are never sampled; spans are.
Issue #6 puts a durable on-disk spool under `submit` so nothing is lost across a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from gateway.routing.router import Attempt
from gateway.telemetry.spans import attempt_span, attributes, server_span
from meterline.otlp_usage import to_log_record
from meterline.usage_record import UsageRecord

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})
_MAX_BACKOFF_S = 10.0
_MAX_PENDING = 200_000


@dataclass(frozen=True, slots=True)
class SpanDraft:
    """What a server span needs beyond the usage record; turned into protobuf by the exporter."""

    record: UsageRecord
    parent_span_id: str | None
    route: str
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    """Upstream attempts, each exported as a child CLIENT span."""


class TelemetryExporter:
    def __init__(
        self,
        endpoint: str,
        resource: dict[str, str],
        *,
        interval_s: float = 0.5,
        batch_size: int = 512,
        timeout_s: float = 10.0,
    ) -> None:
        self._traces_url = endpoint.rstrip("/") + "/v1/traces"
        self._logs_url = endpoint.rstrip("/") + "/v1/logs"
        self._resource = Resource(attributes=attributes(dict(resource)))
        self._scope = InstrumentationScope(name="meterline.gateway")
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._usage: deque[UsageRecord] = deque()
        self._spans: deque[SpanDraft] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.exported_usage = 0
        self.exported_spans = 0
        self.dropped = 0
        self.failed_exports = 0

    def submit(self, record: UsageRecord | None, span: SpanDraft | None) -> None:
        """Queue a usage record and/or a span. O(1), never blocks, never raises."""
        if record is not None:
            self._usage.append(record)
        if span is not None:
            self._spans.append(span)
        if len(self._spans) > _MAX_PENDING:
            self._spans.popleft()  # spans are best effort; usage records are never dropped here
            self.dropped += 1
        if len(self._usage) >= self._batch_size or len(self._spans) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._usage) + len(self._spans)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout_s)
        self._task = asyncio.create_task(self._run(), name="telemetry-exporter")

    async def close(self, deadline_s: float = 10.0) -> None:
        """Stop the loop and flush what is pending, retrying until the deadline."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=deadline_s)
            except TimeoutError:
                self._task.cancel()
                log.error("telemetry: %d records still pending at shutdown (collector unreachable)", self.pending)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            if backoff:
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
            elif not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            ok = await self.export_pending()
            backoff = 0.0 if ok else min(_MAX_BACKOFF_S, max(0.2, backoff * 2))
            if self._stopping and (ok and not self.pending):
                return

    async def export_pending(self) -> bool:
        """Export everything pending, a batch at a time; False when the collector must be retried."""
        while self._usage or self._spans:
            usage = [self._usage.popleft() for _ in range(min(self._batch_size, len(self._usage)))]
            spans = [self._spans.popleft() for _ in range(min(self._batch_size, len(self._spans)))]
            if usage and not await self._post(self._logs_url, self._encode_logs(usage), ExportLogsServiceResponse):
                self._usage.extendleft(reversed(usage))
                self._spans.extendleft(reversed(spans))
                return False
            self.exported_usage += len(usage)
            if spans and not await self._post(self._traces_url, self._encode_spans(spans), ExportTraceServiceResponse):
                self._spans.extendleft(reversed(spans))
                return False
            self.exported_spans += len(spans)
        return True

    def _encode_logs(self, usage: list[UsageRecord]) -> bytes:
        request = ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=self._resource,
                    scope_logs=[ScopeLogs(scope=self._scope, log_records=[to_log_record(r) for r in usage])],
                )
            ]
        )
        return bytes(request.SerializeToString())

    def _encode_spans(self, drafts: list[SpanDraft]) -> bytes:
        spans = []
        for d in drafts:
            spans.append(
                server_span(
                    d.record,
                    parent_span_id=d.parent_span_id,
                    route=d.route,
                    response_id=d.response_id,
                    finish_reasons=list(d.finish_reasons),
                )
            )
            spans.extend(attempt_span(d.record, attempt) for attempt in d.attempts)
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(resource=self._resource, scope_spans=[ScopeSpans(scope=self._scope, spans=spans)])
            ]
        )
        return bytes(request.SerializeToString())

    async def _post(self, url: str, body: bytes, response_type: Any) -> bool:
        """True when the batch is done with (accepted, or rejected as undeliverable); False to retry."""
        assert self._client is not None
        try:
            response = await self._client.post(url, content=body, headers={"Content-Type": "application/x-protobuf"})
        except httpx.HTTPError as exc:
            self.failed_exports += 1
            log.warning("telemetry: export to %s failed (%s); will retry", url, type(exc).__name__)
            return False
        if response.status_code == 200:
            parsed = response_type.FromString(response.content)
            if parsed.HasField("partial_success") and parsed.partial_success.error_message:
                log.error("telemetry: collector rejected part of a batch: %s", parsed.partial_success.error_message)
            return True
        self.failed_exports += 1
        if response.status_code in _RETRYABLE_STATUS:
            log.warning("telemetry: collector answered %d; will retry", response.status_code)
            return False
        log.error("telemetry: collector refused a batch with %d; dropped", response.status_code)
        return True
