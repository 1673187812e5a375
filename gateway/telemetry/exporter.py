"""Ships spans and usage records to the collector over OTLP/HTTP protobuf, off the request path.

The request path only appends to in-memory lists (`submit`). A background task encodes and
posts batches every `interval` (or sooner when a batch fills), retries retryable failures with
backoff and jitter, and never raises into a request. Usage records are never sampled; spans are.
With a `Spool`, usage records are durable: a writer task appends them to the on-disk spool in
groups every `flush_ms` (0: at once, and `durable()` lets the response wait for the fsync); the
sender reads the spool and acknowledges it batch by batch, so a crash loses at most the records
of one flush window and a restart resends what the collector has not acknowledged. Spans stay
best effort in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway.providers.h1 import ConnectionFailed, HttpClient
from gateway.routing.router import Attempt
from gateway.telemetry import otlp_wire
from gateway.telemetry.otlp_wire import field, usage_log_record
from gateway.telemetry.spans import attributes
from gateway.telemetry.spool import Spool, SpoolFull
from gateway.telemetry.trace_context import new_span_id
from meterline.secrets import LiveSecret
from meterline.usage_record import UsageRecord

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({401, 403, 408, 429, 502, 503, 504})
"""Statuses that say nothing about the batch: kept and sent again (a wrong or missing token is
an operator's fix; the spool waits for it rather than losing records)."""
_MAX_BACKOFF_S = 10.0
_MAX_PENDING = 200_000
_PROTOBUF = {"Content-Type": "application/x-protobuf"}


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
        spool: Spool | None = None,
        flush_ms: int = 50,
        token: LiveSecret | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`token`: sent as `Authorization: Bearer` (read per post, never logged); `tls`: the
        context for an https:// collector (collector_link.py)."""
        self._token = token
        self._tls = tls
        self._traces_url = endpoint.rstrip("/") + "/v1/traces"
        self._logs_url = endpoint.rstrip("/") + "/v1/logs"
        self._resource_bytes = Resource(attributes=attributes(dict(resource))).SerializeToString()
        self._scope_bytes = InstrumentationScope(name="meterline.gateway").SerializeToString()
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._usage: deque[UsageRecord] = deque()
        self._spans: deque[SpanDraft] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._client: HttpClient | None = None
        self.exported_usage = 0
        self.exported_spans = 0
        self.dropped = 0
        self.failed_exports = 0
        self._spool = spool
        self._flush_s = flush_ms / 1000.0
        self._unspooled: list[UsageRecord] = []
        self._submitted = 0
        self._spooled = 0
        self._flush_wake = asyncio.Event()
        self._durable_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writer_task: asyncio.Task[None] | None = None

    def submit(self, record: UsageRecord | None, span: SpanDraft | None) -> None:
        """Queue a usage record and/or a span. O(1), never blocks, never raises."""
        if record is not None:
            if self._spool is not None:
                self._unspooled.append(record)
                self._submitted += 1
                if not self._flush_s:
                    self._flush_wake.set()
            else:
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
        spooled = self._spool.unacked_records if self._spool is not None else 0
        return len(self._usage) + len(self._spans) + len(self._unspooled) + spooled

    @property
    def spool_bytes(self) -> int:
        return self._spool.size_bytes if self._spool is not None else 0

    @property
    def sync_commit(self) -> bool:
        """True when each response must wait for its usage record's fsync (`flush_ms: 0`)."""
        return self._spool is not None and not self._flush_s

    async def durable(self) -> None:
        """Return once every usage record submitted so far is fsync'd in the spool."""
        if self._spool is None or self._spooled >= self._submitted:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._durable_waiters.append((self._submitted, waiter))
        self._flush_wake.set()
        await waiter

    async def start(self) -> None:
        # The direct forwards' lean keep-alive client: httpx's request machinery was most of
        # the exporter's CPU, which a lightly loaded gateway spreads over few requests.
        self._client = HttpClient(self._tls)
        if self._spool is not None:
            await asyncio.to_thread(self._spool.open)
            self._writer_task = asyncio.create_task(self._run_spool_writer(), name="telemetry-spool")
        self._task = asyncio.create_task(self._run(), name="telemetry-exporter")

    async def _run_spool_writer(self) -> None:
        assert self._spool is not None
        while True:
            if self._flush_s and not self._stopping:
                await asyncio.sleep(self._flush_s)
            elif not self._unspooled and not self._stopping:
                await self._flush_wake.wait()
            self._flush_wake.clear()
            # The sender wakes for a full batch, not for every group commit: a post per 50 ms
            # window was a third of a lightly loaded gateway's CPU. Below a batch, the export
            # interval sends what the spool holds.
            if await self._write_spool() and self._spool.unacked_records >= self._batch_size:
                self._wake.set()
            if self._stopping and not self._unspooled:
                return

    async def _write_spool(self) -> bool:
        """One group commit of the records submitted since the last; True when something landed."""
        assert self._spool is not None
        records, self._unspooled = self._unspooled, []
        if not records:
            return False
        payloads = [usage_log_record(r) for r in records]
        try:
            await asyncio.to_thread(self._spool.append, payloads)
        except SpoolFull as exc:
            log.error("telemetry: spool full, %d usage records dropped: %s", len(records), exc)
        except OSError as exc:
            log.error("telemetry: spool append failed (%s); will retry", exc)
            self._unspooled[:0] = records
            await asyncio.sleep(0.2)
            return False
        self._spooled += len(records)
        done = [w for w in self._durable_waiters if w[0] <= self._spooled]
        self._durable_waiters = [w for w in self._durable_waiters if w[0] > self._spooled]
        for _, waiter in done:
            if not waiter.done():
                waiter.set_result(None)
        return True

    async def close(self, deadline_s: float = 10.0) -> None:
        """Stop the loop and flush what is pending, retrying until the deadline."""
        self._stopping = True
        self._stop.set()
        self._flush_wake.set()
        if self._writer_task is not None:
            await self._writer_task
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=deadline_s)
            except TimeoutError:
                self._task.cancel()
                log.error("telemetry: %d records still pending at shutdown (collector unreachable)", self.pending)
        if self._client is not None:
            self._client.close()
        if self._spool is not None:
            self._spool.close()

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            if backoff and not self._stopping:
                # A stop cuts the backoff short: the last attempts belong to the shutdown deadline.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=backoff * random.uniform(0.5, 1.5))
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
        if self._spool is not None and not await self._export_spool():
            return False
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

    async def _export_spool(self) -> bool:
        spool = self._spool
        assert spool is not None
        while True:
            payloads, cursor = await asyncio.to_thread(spool.read, self._batch_size)
            if not payloads:
                return True
            if not await self._post(self._logs_url, self._wrap_logs(payloads), ExportLogsServiceResponse):
                spool.rewind()
                return False
            await asyncio.to_thread(spool.ack, cursor, len(payloads))
            self.exported_usage += len(payloads)

    def _wrap_logs(self, log_records: list[bytes]) -> bytes:
        """An ExportLogsServiceRequest around already serialized LogRecords, without parsing them."""
        scope_logs = field(1, self._scope_bytes) + b"".join(field(2, r) for r in log_records)
        resource_logs = field(1, self._resource_bytes) + field(2, scope_logs)
        return field(1, resource_logs)

    def _encode_logs(self, usage: list[UsageRecord]) -> bytes:
        return self._wrap_logs([usage_log_record(r) for r in usage])

    def _encode_spans(self, drafts: list[SpanDraft]) -> bytes:
        """An ExportTraceServiceRequest written directly as bytes (see otlp_wire)."""
        spans: list[bytes] = []
        for d in drafts:
            reasons = list(d.finish_reasons)
            spans.append(
                otlp_wire.server_span(
                    d.record, parent_span_id=d.parent_span_id, route=d.route, response_id=d.response_id,
                    finish_reasons=reasons,
                )
            )  # fmt: skip
            spans.extend(otlp_wire.attempt_span(d.record, attempt, new_span_id()) for attempt in d.attempts)
        scope_spans = field(1, self._scope_bytes) + b"".join(field(2, span) for span in spans)
        return field(1, field(1, self._resource_bytes) + field(2, scope_spans))

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            return _PROTOBUF
        return {**_PROTOBUF, "Authorization": f"Bearer {self._token.reveal()}"}

    async def _post(self, url: str, body: bytes, response_type: Any) -> bool:
        """True when the batch is done with (accepted, or rejected as undeliverable); False to retry."""
        assert self._client is not None
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.post(url, body, self._headers())
                try:
                    content = await response.read()
                finally:
                    response.release()  # read to its end: back to the pool; cut short: closed
        except (ConnectionFailed, TimeoutError) as exc:
            self.failed_exports += 1
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            log.warning("telemetry: export to %s failed (%s); will retry", url, reason)
            return False
        if response.status == 200:
            parsed = response_type.FromString(content)
            if parsed.HasField("partial_success") and parsed.partial_success.error_message:
                log.error("telemetry: collector rejected part of a batch: %s", parsed.partial_success.error_message)
            return True
        self.failed_exports += 1
        if response.status == 401 and self._token is not None:
            self._token.refresh_soon(10.0)  # perhaps rotated in the secrets manager; the next try sends it
        if response.status in _RETRYABLE_STATUS:
            log.warning("telemetry: collector answered %d; will retry", response.status)
            return False
        log.error("telemetry: collector refused a batch with %d; dropped", response.status)
        return True
