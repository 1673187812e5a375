"""Everything a request handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth import AgentDirectory
from gateway.metering import InstanceLabels, RequestMeter
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
    upstream: Upstream | None = None
    """None until the upstream side has started; readiness says so."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def finish(
        self,
        meter: RequestMeter,
        *,
        route: str,
        response_id: str | None = None,
        finish_reasons: tuple[str, ...] = (),
    ) -> None:
        """Hand the request's usage record (always) and span (if sampled) to the exporter."""
        record = meter.to_record()
        span = None
        if is_sampled(record.trace_id, self.config.telemetry.span_sample_ratio):
            span = SpanDraft(
                record, meter.trace.parent_span_id, route, response_id, finish_reasons, tuple(meter.attempts)
            )
        self.exporter.submit(record, span)
