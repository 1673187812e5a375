"""Turns one client request into its usage record (the ledger row) as the request unfolds."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from gateway.auth import AgentIdentity
from gateway.errors import GatewayError
from gateway.routing.router import Attempt
from gateway.telemetry.random_ids import random_hex
from gateway.telemetry.trace_context import TraceContext
from gateway.token_usage import TokenUsage
from meterline.usage_record import UsageRecord


@dataclass(frozen=True, slots=True)
class InstanceLabels:
    """Per-process labels stamped on every record."""

    gateway_instance: str
    env: str
    tenant: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Who answered a request."""

    model: str
    provider: str | None
    fallback_used: bool = False


@dataclass(slots=True)
class RequestMeter:
    identity: AgentIdentity
    trace: TraceContext
    operation: str
    labels: InstanceLabels
    # 128 random bits as hex, as uuid4().hex reads, without building a UUID object (~3 us) or a
    # system call per request (random_ids.py).
    request_id: str = field(default_factory=lambda: f"req_{random_hex(16)}")
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    _t0: float = field(default_factory=time.perf_counter)
    model_requested: str = ""
    stream: bool = False
    ttft_ms: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    answer: Answer | None = None
    usage: TokenUsage | None = None
    usage_estimated: bool = False
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    cache_hit: bool = False
    price_version: str | None = None
    status: str = "ok"
    http_status: int = 200
    error_type: str | None = None

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self._t0) * 1000.0

    def failed(self, error: GatewayError) -> None:
        self.status = "error"
        self.http_status = error.status_code
        self.error_type = error.ledger_error_type

    def client_disconnected(self) -> None:
        self.status = "client_disconnected"
        self.http_status = 499  # nginx's convention: the client closed the request
        self.error_type = "client_disconnected"

    def to_record(self) -> UsageRecord:
        latency_ms = (time.perf_counter() - self._t0) * 1000.0
        ended_at = self.started_at + dt.timedelta(milliseconds=latency_ms)
        usage = self.usage or TokenUsage()
        answer = self.answer
        return UsageRecord(
            request_id=self.request_id,
            trace_id=self.trace.trace_id,
            span_id=self.trace.span_id,
            ts_start=self.started_at,
            ts_end=ended_at,
            latency_ms=latency_ms,
            ttft_ms=self.ttft_ms,
            agent_id=self.identity.agent_id,
            team=self.identity.team,
            project=self.identity.project,
            key_alias=self.identity.key_alias,
            tags=dict(self.identity.tags),
            operation=self.operation,
            model_requested=self.model_requested,
            model=answer.model if answer else None,
            provider=answer.provider if answer else None,
            stream=self.stream,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            reasoning_output_tokens=usage.reasoning_output_tokens,
            usage_estimated=self.usage_estimated,
            usage_raw=usage.raw,
            cost_usd=self.cost_usd,
            price_version=self.price_version,
            provider_key_version=next((a.key_version for a in reversed(self.attempts) if a.outcome == "ok"), None),
            status=self.status,
            http_status=self.http_status,
            error_type=self.error_type,
            attempts=len(self.attempts),
            fallback_used=answer.fallback_used if answer else False,
            cache_hit=self.cache_hit,
            cost_saved_usd=self.cost_saved_usd,
            gateway_instance=self.labels.gateway_instance,
            env=self.labels.env,
            tenant=self.labels.tenant,
            date=self.started_at.date(),
        )
