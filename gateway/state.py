"""Everything a request handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth import AgentDirectory
from gateway.metering import Deployment, RequestMeter
from gateway.telemetry.exporter import SpanDraft
from gateway.telemetry.sink import TelemetrySink
from gateway.telemetry.trace_context import is_sampled
from gateway.upstream import Upstream
from meterline.config import MeterlineConfig


@dataclass
class GatewayState:
    config: MeterlineConfig
    agents: AgentDirectory
    deployment: Deployment
    exporter: TelemetrySink
    upstream: Upstream | None = None
    """None until LiteLLM is loaded; readiness says so."""

    def finish(
        self,
        meter: RequestMeter,
        *,
        parent_span_id: str | None,
        route: str,
        response_id: str | None = None,
        finish_reasons: tuple[str, ...] = (),
    ) -> None:
        """Hand the request's usage record (always) and span (if sampled) to the exporter."""
        record = meter.to_record()
        span = None
        if is_sampled(record.trace_id, self.config.telemetry.span_sample_ratio):
            span = SpanDraft(record, parent_span_id, route, response_id, finish_reasons)
        self.exporter.submit(record, span)
