"""Where the request path hands its usage records and spans: the small interface exporters share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gateway.telemetry.exporter import SpanDraft
from meterline.usage_record import UsageRecord


class TelemetrySink(Protocol):
    def submit(self, record: UsageRecord | None, span: SpanDraft | None) -> None:
        """Accept a record and/or span without blocking or raising."""

    @property
    def pending(self) -> int:
        """Items accepted but not yet delivered."""

    @property
    def spool_bytes(self) -> int:
        """Bytes waiting in the on-disk spool (0 without one)."""

    @property
    def accepting(self) -> bool:
        """False when a usage record submitted now could not be kept (the request path answers 503)."""

    @property
    def backlog(self) -> int:
        """Items held in memory (bounded by `telemetry.max_backlog`)."""

    @property
    def counts(self) -> Mapping[str, int]:
        """Events of note by kind (repaired, set aside, dropped, loop errors, ...)."""

    @property
    def sync_commit(self) -> bool:
        """True when a response must wait for `durable()` before its last byte."""

    async def durable(self) -> None:
        """Return once every usage record submitted so far is on disk (no-op without a spool)."""

    async def start(self) -> None: ...

    async def close(self, deadline_s: float = 10.0) -> None: ...


class InMemorySink:
    """Keeps everything submitted; the test double for the exporter (like OTel's in-memory exporter)."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []
        self.spans: list[SpanDraft] = []

    def submit(self, record: UsageRecord | None, span: SpanDraft | None) -> None:
        if record is not None:
            self.records.append(record)
        if span is not None:
            self.spans.append(span)

    @property
    def pending(self) -> int:
        return 0

    @property
    def spool_bytes(self) -> int:
        return 0

    @property
    def accepting(self) -> bool:
        return True

    @property
    def backlog(self) -> int:
        return 0

    @property
    def counts(self) -> Mapping[str, int]:
        return {}

    @property
    def sync_commit(self) -> bool:
        return False

    async def durable(self) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self, deadline_s: float = 10.0) -> None:
        return None
