"""Ships spans and usage records to the collector over OTLP/HTTP protobuf, off the request path.

Usage records are durable: `submit` encodes the record and writes it to the on-disk spool at
once (an `os.write`, so a process killed right after the response loses nothing); a writer
task fsyncs the spool in groups every `flush_ms` (0: at once, and `durable()` lets the response
wait for that fsync), so only a machine crash can lose the records of the last flush window.
The sender reads the synced spool and acknowledges it batch by batch; a restart resends what
the collector has not acknowledged. Spans stay best effort in memory. Usage records are never
sampled; spans are.

Nothing here raises into a request, and no background loop dies of one bad item (the
OpenTelemetry SDK's rule): a string that cannot be encoded is repaired (U+FFFD) and the record
flagged `text_repaired` and billed; a record that still cannot be encoded, or that the
collector refuses on its own, is set aside in the spool's dead-letter file; a reply that is not
OTLP is logged; every such event is counted (`counts`, exported as a metric) and logged at most
once per interval (a collector that is away: one line per interval, with how many were not
logged). A collector that is away is retried with a growing backoff, in the shutdown grace too
(there at most `_STOPPING_BACKOFF_S` apart), never in a tight loop. What the spool cannot take
(full, or a failing disk) waits in memory up to `max_backlog` records, beyond which new ones
are dropped, counted and logged, never silently.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import enum
import json
import logging
import random
import ssl
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway.providers.h1 import ConnectionFailed, HttpClient
from gateway.routing.router import Attempt
from gateway.telemetry import otlp_wire
from gateway.telemetry.otlp_wire import field, usage_log_record
from gateway.telemetry.repair import repaired
from gateway.telemetry.spans import attributes
from gateway.telemetry.spool import Spool, SpoolFull
from gateway.telemetry.trace_context import new_span_id
from meterline.log_limit import LogLimiter
from meterline.secrets import LiveSecret
from meterline.usage_record import UsageRecord

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({401, 403, 408, 429, 502, 503, 504})
"""Statuses that say nothing about the batch: kept and sent again (a wrong or missing token is
an operator's fix; the spool waits for it rather than losing records)."""
_MAX_BACKOFF_S = 10.0
_STOPPING_BACKOFF_S = 1.0
"""The longest pause between tries in the shutdown grace, so the last records still leave
within a second of the collector coming back (without it: ~1,000 connects a second)."""
DEFAULT_MAX_BACKLOG = 100_000
_ERROR_PAUSE_S = 0.2


class Sent(enum.Enum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    REFUSED = "refused"
    """The collector refused this body for what it holds (a non-retryable 4xx)."""


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
        spool: Spool,
        interval_s: float = 0.5,
        batch_size: int = 512,
        timeout_s: float = 10.0,
        flush_ms: int = 50,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
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
        self._max_backlog = max_backlog
        self._spans: deque[SpanDraft] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._client: HttpClient | None = None
        self.exported_usage = 0
        self.exported_spans = 0
        self.failed_exports = 0
        self._log = LogLimiter(log)
        self.counts: Counter[str] = Counter()
        """Events of note, by kind: usage records `repaired`, `set_aside`, `held` in memory (the
        spool could not take them), `usage_dropped`; `span_dropped`; `bad_reply`; `spool_error`
        (a failed fsync or dead-letter write); `loop_error` (meterline_telemetry_events_total)."""
        self._spool = spool
        self._flush_s = flush_ms / 1000.0
        self._backlog: deque[bytes] = deque()
        """Encoded usage records the spool could not take yet (full or failing), oldest first."""
        self._aside: list[dict[str, str]] = []
        """Unencodable records waiting for the writer task to put them in the dead-letter file."""
        self._accepted = 0
        self._synced = 0
        self._flush_wake = asyncio.Event()
        self._durable_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writer_task: asyncio.Task[None] | None = None

    # -- the request path ----------------------------------------------------------------------

    def submit(self, record: UsageRecord | None, span: SpanDraft | None) -> None:
        """Write a usage record to the spool and/or queue a span. Never blocks, never raises."""
        if record is not None:
            payload, fixed = self._encode(record)
            if fixed is not record and span is not None:
                span = dataclasses.replace(span, record=fixed)
            if payload is not None:
                self._accept(payload)
        if span is not None:
            self._spans.append(span)
            if len(self._spans) > self._max_backlog:
                self._spans.popleft()  # spans are best effort; usage records wait in the spool
                self.counts["span_dropped"] += 1
            if len(self._spans) >= self._batch_size:
                self._wake.set()

    def _encode(self, record: UsageRecord) -> tuple[bytes | None, UsageRecord]:
        """The record's LogRecord bytes, repairing strings that cannot be encoded; None (the
        record set aside) when even the repaired record cannot be."""
        try:
            return usage_log_record(record), record
        except Exception as exc:  # noqa: BLE001 - any one record's fault stays with that record
            error: Exception = exc
        fixed = repaired(record)
        if fixed is not None:
            try:
                payload = usage_log_record(fixed)
            except Exception as exc:  # noqa: BLE001
                error = exc
            else:
                self.counts["repaired"] += 1
                self._log.log(
                    logging.WARNING, "repaired",
                    "telemetry: usage record %s held text that is not valid Unicode; repaired (U+FFFD), "
                    "flagged text_repaired and billed", fixed.request_id,
                )  # fmt: skip
                return payload, fixed
        self.counts["set_aside"] += 1
        self._log.log(
            logging.ERROR, "unencodable",
            "telemetry: usage record %s cannot be encoded (%s); set aside in the spool's dead-letter file",
            record.request_id, type(error).__name__,
        )  # fmt: skip
        row = json.dumps(record.as_row(), default=str, ensure_ascii=True, sort_keys=True)
        self._aside.append({"reason": f"cannot encode: {type(error).__name__}", "record": row})
        self._flush_wake.set()
        return None, record

    def _accept(self, payload: bytes) -> None:
        if not self._backlog and self._write([payload]):
            self._accepted += 1
        elif len(self._backlog) < self._max_backlog:
            self._backlog.append(payload)
            self._accepted += 1
            self.counts["held"] += 1
        else:
            self.counts["usage_dropped"] += 1
            self._log.log(
                logging.ERROR, "usage_dropped",
                "telemetry: usage record dropped: the spool refuses writes and %d records already wait in "
                "memory (telemetry.max_backlog)", len(self._backlog),
            )  # fmt: skip
            return
        if not self._flush_s:
            self._flush_wake.set()

    def _write(self, payloads: list[bytes]) -> bool:
        """Put encoded records in the spool file; False when it cannot take them now."""
        try:
            self._spool.write(payloads)
        except SpoolFull as exc:
            self._log.log(logging.ERROR, "spool_full", "telemetry: spool full (%s); usage records wait in memory", exc)
            return False
        except OSError as exc:
            self._log.log(logging.ERROR, "spool_write", "telemetry: spool write failed (%s); will retry", exc)
            return False
        return True

    @property
    def pending(self) -> int:
        return len(self._spans) + len(self._backlog) + self._spool.unsynced_records + self._spool.unacked_records

    @property
    def accepting(self) -> bool:
        """False while the spool refuses writes and the memory backlog is full: a usage record
        submitted now would be dropped, so the request path refuses new requests (503) instead."""
        return len(self._backlog) < self._max_backlog

    @property
    def backlog(self) -> int:
        """Items held in memory: spans, and usage records the spool could not take yet."""
        return len(self._spans) + len(self._backlog)

    @property
    def spool_bytes(self) -> int:
        return self._spool.size_bytes

    @property
    def sync_commit(self) -> bool:
        """True when each response must wait for its usage record's fsync (`flush_ms: 0`)."""
        return not self._flush_s

    async def durable(self) -> None:
        """Return once every usage record submitted so far is fsync'd in the spool."""
        if self._synced >= self._accepted:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._durable_waiters.append((self._accepted, waiter))
        self._flush_wake.set()
        await waiter

    # -- the spool writer: group commits -----------------------------------------------------------

    async def start(self) -> None:
        # The direct forwards' lean keep-alive client: httpx's request machinery was most of
        # the exporter's CPU, which a lightly loaded gateway spreads over few requests.
        self._client = HttpClient(self._tls)
        await asyncio.to_thread(self._spool.open)
        self._writer_task = asyncio.create_task(self._run_spool_writer(), name="telemetry-spool")
        self._task = asyncio.create_task(self._run(), name="telemetry-exporter")

    async def _run_spool_writer(self) -> None:
        while True:
            ok = False
            try:
                if self._flush_s and not self._stopping:
                    await asyncio.sleep(self._flush_s)
                elif not self._has_spool_work() and not self._stopping:
                    await self._flush_wake.wait()
                self._flush_wake.clear()
                ok = await self._commit()
                # The sender wakes for a full batch, not for every group commit: a post per 50 ms
                # window was a third of a lightly loaded gateway's CPU. Below a batch, the export
                # interval sends what the spool holds.
                if self._spool.unacked_records >= self._batch_size:
                    self._wake.set()
            except Exception:  # noqa: BLE001 - the writer outlives any one fault
                self.counts["loop_error"] += 1
                self._log.log(logging.ERROR, "writer_loop", "telemetry: spool writer failed; continuing", exc_info=True)
            if self._stopping:
                return  # one last commit; what a full spool held back, close() tries after the sender
            if not ok:
                await asyncio.sleep(_ERROR_PAUSE_S)  # a full spool or a failing disk: no busy loop

    def _has_spool_work(self) -> bool:
        return bool(self._backlog or self._aside or self._spool.unsynced_records)

    async def force_flush(self) -> bool:
        """Write what waits in memory to the spool and fsync it now; False when some could not be."""
        return await self._commit()

    async def _commit(self) -> bool:
        """Move the backlog into the spool, fsync what was written (one group), set aside the
        unencodable; False when the spool could not take it all (full, or a failing disk)."""
        while self._backlog:
            chunk = [self._backlog[i] for i in range(min(len(self._backlog), 4096))]
            if not self._write(chunk):
                break
            for _ in chunk:
                self._backlog.popleft()
        ok = not self._backlog
        if self._spool.unsynced_records:
            try:
                self._synced += await asyncio.to_thread(self._spool.sync)
            except OSError as exc:
                self.counts["spool_error"] += 1
                self._log.log(logging.ERROR, "spool_sync", "telemetry: spool fsync failed (%s); will retry", exc)
                ok = False
        if self._durable_waiters:
            done = [w for w in self._durable_waiters if w[0] <= self._synced]
            self._durable_waiters = [w for w in self._durable_waiters if w[0] > self._synced]
            for _, waiter in done:
                if not waiter.done():
                    waiter.set_result(None)
        aside, self._aside = self._aside, []
        for entry in aside:
            await self._set_aside(entry)
        return ok

    async def _set_aside(self, entry: dict[str, str]) -> None:
        entry = {"at": dt.datetime.now(dt.UTC).isoformat(), **entry}
        try:
            await asyncio.to_thread(self._spool.set_aside, entry)
        except OSError as exc:
            self.counts["spool_error"] += 1
            self._log.log(logging.ERROR, "dead_letter", "telemetry: dead-letter write failed (%s); entry lost", exc)

    async def close(self, deadline_s: float = 10.0) -> None:
        """Stop the loops and flush what is pending, retrying until the deadline."""
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
        if self._backlog or self._aside:
            await self._commit()  # what a full spool held back, now that the sender freed space
            if self._backlog:
                log.error("telemetry: %d usage records could not be spooled at shutdown", len(self._backlog))
        if self._client is not None:
            self._client.close()
        self._spool.close()

    # -- the sender ------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.0
        tried_stopping = False
        while True:
            if backoff and not self._stopping:
                # A stop cuts the backoff short: the last attempts belong to the shutdown deadline.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=backoff * random.uniform(0.5, 1.5))
            elif backoff and tried_stopping:
                await asyncio.sleep(min(_STOPPING_BACKOFF_S, backoff) * random.uniform(0.5, 1.5))
            elif not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            tried_stopping = self._stopping
            try:
                ok = await self.export_pending()
            except Exception:  # noqa: BLE001 - the sender outlives any one fault
                self.counts["loop_error"] += 1
                self._log.log(logging.ERROR, "sender_loop", "telemetry: export failed; continuing", exc_info=True)
                self._spool.rewind()
                ok = False
            backoff = 0.0 if ok else min(_MAX_BACKOFF_S, max(0.2, backoff * 2))
            if self._stopping and ok and not (self._spans or self._spool.unacked_records):
                return

    async def export_pending(self) -> bool:
        """Export everything pending, a batch at a time; False when the collector must be retried."""
        if not await self._export_spool():
            return False
        while self._spans:
            drafts = [self._spans.popleft() for _ in range(min(self._batch_size, len(self._spans)))]
            if await self._post(self._traces_url, self._encode_spans(drafts), ExportTraceServiceResponse) is Sent.RETRY:
                self._spans.extendleft(reversed(drafts))
                return False
            self.exported_spans += len(drafts)
        return True

    async def _export_spool(self) -> bool:
        spool = self._spool
        while True:
            payloads, cursor = await asyncio.to_thread(spool.read, self._batch_size)
            if not payloads:
                return True
            if not await self._send_usage(payloads):
                spool.rewind()
                return False
            await asyncio.to_thread(spool.ack, cursor, len(payloads))

    async def _send_usage(self, payloads: list[bytes]) -> bool:
        """Deliver spooled records; False to retry them all. A batch the collector refuses is
        halved until the refused records stand alone: those are set aside, the rest delivered
        (the collector drops the copies a retry resends, by request_id)."""
        sent = await self._post(self._logs_url, self._wrap_logs(payloads), ExportLogsServiceResponse)
        if sent is Sent.ACCEPTED:
            self.exported_usage += len(payloads)
            return True
        if sent is Sent.RETRY:
            return False
        if len(payloads) > 1:
            half = len(payloads) // 2
            return await self._send_usage(payloads[:half]) and await self._send_usage(payloads[half:])
        self.counts["set_aside"] += 1
        await self._set_aside(
            {"reason": "refused by the collector", "log_record_b64": base64.b64encode(payloads[0]).decode()}
        )
        return True

    def _wrap_logs(self, log_records: list[bytes]) -> bytes:
        """An ExportLogsServiceRequest around already serialized LogRecords, without parsing them."""
        scope_logs = field(1, self._scope_bytes) + b"".join(field(2, r) for r in log_records)
        resource_logs = field(1, self._resource_bytes) + field(2, scope_logs)
        return field(1, resource_logs)

    def _encode_logs(self, usage: list[UsageRecord]) -> bytes:
        return self._wrap_logs([usage_log_record(r) for r in usage])

    def _encode_spans(self, drafts: list[SpanDraft]) -> bytes:
        """An ExportTraceServiceRequest written directly as bytes (see otlp_wire); a draft that
        cannot be encoded is dropped and counted (spans are best effort)."""
        spans: list[bytes] = []
        for d in drafts:
            try:
                spans.append(
                    otlp_wire.server_span(
                        d.record, parent_span_id=d.parent_span_id, route=d.route, response_id=d.response_id,
                        finish_reasons=list(d.finish_reasons),
                    )
                )  # fmt: skip
                spans.extend(otlp_wire.attempt_span(d.record, attempt, new_span_id()) for attempt in d.attempts)
            except Exception as exc:  # noqa: BLE001 - one span's fault stays with that span
                self.counts["span_dropped"] += 1
                self._log.log(
                    logging.WARNING, "span_encode",
                    "telemetry: span of %s cannot be encoded (%s); dropped", d.record.request_id, type(exc).__name__,
                )  # fmt: skip
        scope_spans = field(1, self._scope_bytes) + b"".join(field(2, span) for span in spans)
        return field(1, field(1, self._resource_bytes) + field(2, scope_spans))

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            return _PROTOBUF
        return {**_PROTOBUF, "Authorization": f"Bearer {self._token.reveal()}"}

    async def _post(self, url: str, body: bytes, response_type: Any) -> Sent:
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
            self._log.log(
                logging.WARNING, "post_failed", "telemetry: export to %s failed (%s); will retry", url, reason
            )
            return Sent.RETRY
        if response.status == 200:
            try:
                parsed = response_type.FromString(content)
            except DecodeError:
                # 200 is the collector's acknowledgement; only the optional partial-success
                # details are unreadable.
                self.counts["bad_reply"] += 1
                self._log.log(
                    logging.WARNING, "bad_reply",
                    "telemetry: the collector answered 200 with a body that is not OTLP (%d bytes); taken as accepted",
                    len(content),
                )  # fmt: skip
                return Sent.ACCEPTED
            if parsed.HasField("partial_success") and parsed.partial_success.error_message:
                self._log.log(
                    logging.ERROR, "partial",
                    "telemetry: collector rejected part of a batch: %s", parsed.partial_success.error_message[:500],
                )  # fmt: skip
            return Sent.ACCEPTED
        self.failed_exports += 1
        if response.status == 401 and self._token is not None:
            self._token.refresh_soon(10.0)  # perhaps rotated in the secrets manager; the next try sends it
        if response.status in _RETRYABLE_STATUS:
            self._log.log(
                logging.WARNING, "retry_status", "telemetry: collector answered %d; will retry", response.status
            )
            return Sent.RETRY
        self._log.log(logging.ERROR, "refused", "telemetry: collector refused a batch with %d", response.status)
        return Sent.REFUSED
