"""Everything a request handler needs, built once in the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from gateway.auth import AgentDirectory
from gateway.cache import ResponseCache
from gateway.metering import InstanceLabels, RequestMeter
from gateway.metrics import GatewayMetrics
from gateway.quotas.service import QuotaService
from gateway.telemetry.exporter import SpanDraft
from gateway.telemetry.sink import TelemetrySink
from gateway.telemetry.trace_context import is_sampled
from gateway.upstream import Upstream
from meterline.config import MeterlineConfig

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass
class GatewayState:
    config: MeterlineConfig
    agents: AgentDirectory
    labels: InstanceLabels
    exporter: TelemetrySink
    metrics: GatewayMetrics
    upstream: Upstream | None = None
    """None until the upstream side has started; readiness says so."""
    cache: ResponseCache | None = None
    quotas: QuotaService | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    background: set[asyncio.Task[None]] = field(default_factory=set)
    """Work a response does not wait for (quota settlement); awaited at shutdown."""

    def __post_init__(self) -> None:
        # Read when /metrics is scraped, not set on every request.
        exporter = self.exporter
        self.metrics.telemetry_pending.set_function(lambda: exporter.pending)
        self.metrics.telemetry_spool_bytes.set_function(lambda: exporter.spool_bytes)
        self.metrics.telemetry_backlog.set_function(lambda: exporter.backlog)
        self.metrics.watch_telemetry_events(lambda: exporter.counts)

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` after the response, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def drain_background(self) -> None:
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)

    def cached_group(self, group: str) -> bool:
        return self.cache is not None and group in self.config.response_cache.model_groups

    def finish(
        self,
        meter: RequestMeter,
        *,
        route: str,
        response_id: str | None = None,
        finish_reasons: tuple[str, ...] = (),
    ) -> None:
        """Hand the request's usage record (always) and span (if sampled) to the exporter, and
        count it in the metrics."""
        record = meter.to_record()
        priced = bool(
            record.model and self.upstream is not None and self.upstream.prices.is_priced(record.model, record.provider)
        )
        self.metrics.observe(record, priced=priced, cost_saved_usd=record.cost_saved_usd)
        for attempt in meter.attempts:
            seconds = (attempt.ended_ns - attempt.started_ns) / 1e9
            self.metrics.upstream_attempt(attempt.deployment.id, attempt.outcome, seconds)
        span = None
        if is_sampled(record.trace_id, self.config.telemetry.span_sample_ratio):
            span = SpanDraft(
                record, meter.trace.parent_span_id, route, response_id, finish_reasons, tuple(meter.attempts)
            )
        self.exporter.submit(record, span)
