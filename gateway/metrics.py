"""Prometheus metrics for `/metrics`: requests, tokens, cost, latency, upstream attempts.

Each `GatewayMetrics` owns its own `CollectorRegistry` (never the process-wide default), so
two apps in one process, or two tests, never share counters. The metric names below are a
contract with dashboards and alert rules: rename one and they silently go blank.

Labels are bounded and never secret: model groups, models, deployments, statuses. Agent ids,
keys, request ids and tags are not labels (they are in the ledger, where cardinality is free).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from meterline.usage_record import UsageRecord

log = logging.getLogger(__name__)

ATTEMPT_OUTCOMES = frozenset({"ok", "retryable_error", "terminal_error", "timeout"})
"""What one upstream attempt may end as (`GatewayMetrics.upstream_attempt`)."""

OTHER_MODEL_GROUP = "other"
"""The `model_group` label of a request for a group the config does not declare (bounded cardinality)."""

UNPRICED_LOG_INTERVAL_S = 60.0
"""At most one unpriced-usage warning per model per this many seconds."""

REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

TOKEN_KINDS: tuple[tuple[str, str], ...] = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read_input", "cache_read_input_tokens"),
    ("cache_creation_input", "cache_creation_input_tokens"),
    ("reasoning_output", "reasoning_output_tokens"),
)
"""`kind` label -> `UsageRecord` field."""


class GatewayMetrics:
    """The gateway's Prometheus metrics. `observe` once per finished client request,
    `upstream_attempt` once per provider call; `render` is the `/metrics` body."""

    def __init__(
        self,
        *,
        model_groups: Iterable[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`model_groups`: the configured groups; a request naming any other group is
        labelled `other`, so junk model names from clients cannot grow the series count.
        None labels every group as requested. `clock` paces the unpriced-usage warning."""
        self.registry = CollectorRegistry()
        self._model_groups = frozenset(model_groups) if model_groups is not None else None
        self._clock = clock
        self._unpriced_logged_at: dict[str, float] = {}
        self._children: dict[tuple[object, ...], Any] = {}
        r = self.registry
        self.requests = Counter(
            "meterline_requests_total",
            "Client requests finished, by requested model group, answering model, status, HTTP status and streaming.",
            ["model_group", "model", "status", "http_status", "stream"],
            registry=r,
        )
        self.tokens = Counter(
            "meterline_tokens_total",
            "Tokens used by upstream-served requests (cache hits excluded). Kinds overlap as in the "
            "OpenTelemetry GenAI conventions: input includes cache_read_input and cache_creation_input; "
            "output includes reasoning_output.",
            ["model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "meterline_cost_usd_total",
            "Cost in US dollars of upstream-served requests, priced per token kind.",
            ["model"],
            registry=r,
        )
        self.cost_saved = Counter(
            "meterline_cost_saved_usd_total",
            "Cost in US dollars that response-cache hits avoided (what the upstream call would have cost).",
            ["model"],
            registry=r,
        )
        self.request_duration = Histogram(
            "meterline_request_duration_seconds",
            "Client request latency from arrival to last byte, by requested model group and status.",
            ["model_group", "status"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "meterline_time_to_first_token_seconds",
            "Time from request arrival to the first streamed token (streams only), by requested model group.",
            ["model_group"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "meterline_upstream_attempts_total",
            "Upstream provider calls, by deployment and outcome (ok, retryable_error, terminal_error, timeout).",
            ["deployment", "outcome"],
            registry=r,
        )
        self.attempt_duration = Histogram(
            "meterline_upstream_attempt_duration_seconds",
            "Duration of one upstream provider call, by deployment.",
            ["deployment"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.unpriced = Counter(
            "meterline_unpriced_usage_total",
            "Requests to a priced model that used tokens but were recorded at $0: a pricing error to investigate.",
            ["model"],
            registry=r,
        )
        self.quota_store_resets = Counter(
            "meterline_quota_store_resets_total",
            "Times this gateway found the quota store's counters lost (Redis restarted without persistence, "
            "failed over to a replica without the data, or was flushed): limits restarted from zero until "
            "`meterline quotas rebuild` restores them from the ledger.",
            registry=r,
        )
        self.telemetry_pending = Gauge(
            "meterline_telemetry_pending",
            "Usage records and spans queued in the gateway, not yet exported to the collector.",
            registry=r,
        )
        self.telemetry_spool_bytes = Gauge(
            "meterline_telemetry_spool_bytes",
            "Bytes of usage records in the gateway's on-disk spool (alert well before telemetry.spool_max_bytes).",
            registry=r,
        )
        self.telemetry_backlog = Gauge(
            "meterline_telemetry_backlog",
            "Spans and usage records held in the gateway's memory (usage records only while the spool "
            "cannot take them); bounded by telemetry.max_backlog.",
            registry=r,
        )
        self._telemetry_events = _TelemetryEvents()
        r.register(self._telemetry_events)

    def observe(self, record: UsageRecord, *, priced: bool, cost_saved_usd: float = 0.0) -> None:
        """Count one finished client request. `priced`: the answering model has a price, so a
        record that used tokens at $0 is an error (counted and logged). `cost_saved_usd`: for a
        response-cache hit, what the upstream call would have cost."""
        group = self._group_label(record.model_requested)
        model = record.model or ""
        child = self._child
        status = record.status
        child(self.requests, group, model, status, str(record.http_status), "true" if record.stream else "false").inc()
        child(self.request_duration, group, status).observe(record.latency_ms / 1000.0)
        if record.ttft_ms is not None:
            child(self.ttft, group).observe(record.ttft_ms / 1000.0)
        if record.cache_hit:
            if cost_saved_usd > 0:
                child(self.cost_saved, model).inc(cost_saved_usd)
            return
        for kind, field_name in TOKEN_KINDS:
            count: int = getattr(record, field_name)
            if count > 0:
                child(self.tokens, model, kind).inc(count)
        if record.cost_usd > 0:
            child(self.cost, model).inc(record.cost_usd)
        elif priced and record.input_tokens + record.output_tokens > 0:
            self._unpriced_usage(record, model)

    def upstream_attempt(self, deployment: str, outcome: str, seconds: float) -> None:
        """Count one upstream call. `deployment` is a deployment id, never a key or a URL."""
        if outcome not in ATTEMPT_OUTCOMES:
            raise ValueError(
                f"unknown upstream attempt outcome {outcome!r}; expected one of {sorted(ATTEMPT_OUTCOMES)}"
            )
        self._child(self.attempts, deployment, outcome).inc()
        self._child(self.attempt_duration, deployment).observe(seconds)

    def _child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """`metric.labels(*values)`, cached: prometheus_client validates and joins the labels on
        every call, which costs more than the increment itself. Label values are bounded (see the
        module docstring), so the cache is too."""
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def watch_telemetry_events(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Expose the exporter's event counts (read at scrape time) as meterline_telemetry_events_total."""
        self._telemetry_events.counts = counts

    def set_telemetry_pending(self, n: int) -> None:
        self.telemetry_pending.set(n)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this registry, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _group_label(self, model_requested: str) -> str:
        if self._model_groups is None or model_requested in self._model_groups:
            return model_requested
        return OTHER_MODEL_GROUP

    def _unpriced_usage(self, record: UsageRecord, model: str) -> None:
        self.unpriced.labels(model=model).inc()
        now = self._clock()
        last = self._unpriced_logged_at.get(model)
        if last is not None and now - last < UNPRICED_LOG_INTERVAL_S:
            return
        self._unpriced_logged_at[model] = now
        log.warning(
            "priced model %r recorded $0 for request %s that used %d input and %d output tokens "
            "(price_version %s); counted in meterline_unpriced_usage_total",
            model,
            record.request_id,
            record.input_tokens,
            record.output_tokens,
            record.price_version,
        )


class _TelemetryEvents(Collector):
    """meterline_telemetry_events_total{event}: what the exporter's background loops met and
    survived (repaired records, records set aside or dropped, unreadable replies, loop errors)."""

    def __init__(self) -> None:
        self.counts: Callable[[], Mapping[str, int]] = dict

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "meterline_telemetry_events",
            "Telemetry events survived by the gateway's exporter, by kind: repaired, set_aside, held, "
            "usage_dropped, span_dropped, bad_reply, spool_error, loop_error.",
            labels=["event"],
        )
        for event, count in sorted(self.counts().items()):
            family.add_metric([event], count)
        yield family
