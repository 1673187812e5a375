"""Prometheus metrics: exact values after observing constructed usage records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import OTHER_MODEL_GROUP, GatewayMetrics
from meterline.usage_record import UsageRecord

START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def record(**changes: Any) -> UsageRecord:
    base = UsageRecord(
        request_id="req-1",
        trace_id="0" * 32,
        span_id="0" * 16,
        ts_start=START,
        ts_end=START + dt.timedelta(milliseconds=750),
        latency_ms=750.0,
        agent_id="support-bot",
        team="support",
        operation="chat",
        model_requested="chat-default",
        date=START.date(),
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=1_000,
        output_tokens=200,
        cache_read_input_tokens=400,
        reasoning_output_tokens=50,
        cost_usd=0.25,
        price_version="test-prices",
    )
    return dataclasses.replace(base, **changes)


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_one_request_counts_requests_tokens_cost_and_latency() -> None:
    metrics = GatewayMetrics()
    metrics.observe(record(), priced=True)
    metrics.observe(record(request_id="req-2", stream=True, ttft_ms=120.0), priced=True)

    labels = {"model_group": "chat-default", "model": "gpt-4o-mini", "status": "ok", "http_status": "200"}
    assert value(metrics, "meterline_requests_total", **labels, stream="false") == 1
    assert value(metrics, "meterline_requests_total", **labels, stream="true") == 1
    tokens = {
        kind: value(metrics, "meterline_tokens_total", model="gpt-4o-mini", kind=kind)
        for kind in ("input", "output", "cache_read_input", "cache_creation_input", "reasoning_output")
    }
    assert tokens == {
        "input": 2_000,
        "output": 400,
        "cache_read_input": 800,
        "cache_creation_input": None,
        "reasoning_output": 100,
    }
    assert value(metrics, "meterline_cost_usd_total", model="gpt-4o-mini") == 0.5
    duration = {"model_group": "chat-default", "status": "ok"}
    assert value(metrics, "meterline_request_duration_seconds_count", **duration) == 2
    assert value(metrics, "meterline_request_duration_seconds_sum", **duration) == 1.5
    assert value(metrics, "meterline_request_duration_seconds_bucket", **duration, le="0.5") == 0
    assert value(metrics, "meterline_request_duration_seconds_bucket", **duration, le="1.0") == 2
    assert value(metrics, "meterline_time_to_first_token_seconds_count", model_group="chat-default") == 1
    assert value(metrics, "meterline_time_to_first_token_seconds_sum", model_group="chat-default") == 0.12
    assert value(metrics, "meterline_unpriced_usage_total", model="gpt-4o-mini") is None


def test_failed_request_before_any_provider_answered() -> None:
    metrics = GatewayMetrics()
    failed = record(
        model=None,
        provider=None,
        input_tokens=0,
        output_tokens=0,
        cache_read_input_tokens=0,
        reasoning_output_tokens=0,
        cost_usd=0.0,
        status="error",
        http_status=429,
        error_type="rate_limit_exceeded",
        latency_ms=3.0,
    )
    metrics.observe(failed, priced=False)
    labels = {"model_group": "chat-default", "model": "", "status": "error", "http_status": "429", "stream": "false"}
    assert value(metrics, "meterline_requests_total", **labels) == 1
    assert value(metrics, "meterline_request_duration_seconds_sum", model_group="chat-default", status="error") == 0.003
    body, _ = metrics.render()
    assert b"meterline_tokens_total{" not in body
    assert b"meterline_cost_usd_total{" not in body


def test_cache_hit_counts_the_saving_not_tokens_or_cost() -> None:
    metrics = GatewayMetrics()
    metrics.observe(record(cache_hit=True, cost_usd=0.0), priced=True, cost_saved_usd=0.25)
    metrics.observe(record(cache_hit=True, cost_usd=0.0), priced=True, cost_saved_usd=0.25)
    assert value(metrics, "meterline_cost_saved_usd_total", model="gpt-4o-mini") == 0.5
    assert value(metrics, "meterline_tokens_total", model="gpt-4o-mini", kind="input") is None
    assert value(metrics, "meterline_cost_usd_total", model="gpt-4o-mini") is None
    assert value(metrics, "meterline_unpriced_usage_total", model="gpt-4o-mini") is None
    labels = {"model_group": "chat-default", "model": "gpt-4o-mini", "status": "ok", "http_status": "200"}
    assert value(metrics, "meterline_requests_total", **labels, stream="false") == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_priced_model_at_zero_dollars_is_counted_and_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    metrics = GatewayMetrics(clock=clock)
    free = record(cost_usd=0.0)
    with caplog.at_level(logging.WARNING, logger="gateway.metrics"):
        metrics.observe(free, priced=True)
        clock.now += 59.0
        metrics.observe(free, priced=True)
        metrics.observe(record(model="gpt-4o", cost_usd=0.0), priced=True)
        clock.now += 1.0
        metrics.observe(free, priced=True)
    assert value(metrics, "meterline_unpriced_usage_total", model="gpt-4o-mini") == 3
    assert value(metrics, "meterline_unpriced_usage_total", model="gpt-4o") == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert sum("'gpt-4o-mini'" in w for w in warnings) == 2
    assert all("recorded $0" in w and "req-1" in w for w in warnings)


def test_zero_cost_is_not_an_error_for_unpriced_models_or_requests_without_tokens() -> None:
    metrics = GatewayMetrics()
    metrics.observe(record(cost_usd=0.0), priced=False)
    metrics.observe(record(cost_usd=0.0, input_tokens=0, output_tokens=0), priced=True)
    body, _ = metrics.render()
    assert b"meterline_unpriced_usage_total{" not in body


def test_undeclared_model_groups_share_one_label() -> None:
    metrics = GatewayMetrics(model_groups=["chat-default"])
    for junk in ("no-such-model-1", "no-such-model-2"):
        metrics.observe(record(model_requested=junk, model=None, status="error", http_status=404), priced=False)
    metrics.observe(record(), priced=True)
    labels = {"model": "", "status": "error", "http_status": "404", "stream": "false"}
    assert value(metrics, "meterline_requests_total", model_group=OTHER_MODEL_GROUP, **labels) == 2
    assert value(metrics, "meterline_request_duration_seconds_count", model_group="chat-default", status="ok") == 1


def test_upstream_attempts_and_pending_telemetry() -> None:
    metrics = GatewayMetrics()
    metrics.upstream_attempt("openai-east", "retryable_error", 0.5)
    metrics.upstream_attempt("openai-east", "ok", 1.5)
    metrics.upstream_attempt("openai-west", "timeout", 30.0)
    metrics.set_telemetry_pending(7)
    metrics.set_telemetry_pending(3)
    assert value(metrics, "meterline_upstream_attempts_total", deployment="openai-east", outcome="ok") == 1
    assert value(metrics, "meterline_upstream_attempts_total", deployment="openai-east", outcome="retryable_error") == 1
    assert value(metrics, "meterline_upstream_attempts_total", deployment="openai-west", outcome="timeout") == 1
    assert value(metrics, "meterline_upstream_attempt_duration_seconds_count", deployment="openai-east") == 2
    assert value(metrics, "meterline_upstream_attempt_duration_seconds_sum", deployment="openai-east") == 2.0
    assert value(metrics, "meterline_telemetry_pending") == 3
    with pytest.raises(ValueError, match="unknown upstream attempt outcome"):
        metrics.upstream_attempt("openai-east", "maybe", 1.0)


def test_registries_are_per_instance() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.observe(record(), priced=True)
    assert value(second, "meterline_cost_usd_total", model="gpt-4o-mini") is None


def test_exposition_parses_documents_every_metric_and_carries_no_agent() -> None:
    metrics = GatewayMetrics()
    metrics.observe(record(stream=True, ttft_ms=80.0, cache_creation_input_tokens=10), priced=True)
    metrics.observe(record(cost_usd=0.0), priced=True)
    metrics.observe(record(cache_hit=True, cost_usd=0.0), priced=True, cost_saved_usd=0.1)
    metrics.upstream_attempt("openai-east", "ok", 0.7)
    metrics.set_telemetry_pending(1)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    expected = {
        "meterline_requests": "counter",
        "meterline_tokens": "counter",
        "meterline_cost_usd": "counter",
        "meterline_cost_saved_usd": "counter",
        "meterline_request_duration_seconds": "histogram",
        "meterline_time_to_first_token_seconds": "histogram",
        "meterline_upstream_attempts": "counter",
        "meterline_upstream_attempt_duration_seconds": "histogram",
        "meterline_unpriced_usage": "counter",
        "meterline_telemetry_pending": "gauge",
        "meterline_telemetry_backlog": "gauge",
        "meterline_telemetry_events": "counter",
    }
    assert {name: families[name].type for name in expected} == expected
    assert all(families[name].documentation for name in expected)
    assert b"support-bot" not in body
    assert b"agent" not in body.replace(b"Agent", b"")
    tokens = {
        s.labels["kind"]: s.value for s in families["meterline_tokens"].samples if s.name == "meterline_tokens_total"
    }
    assert tokens == {
        "input": 2_000.0,
        "output": 400.0,
        "cache_read_input": 800.0,
        "cache_creation_input": 10.0,
        "reasoning_output": 100.0,
    }


def test_the_exporters_events_are_read_when_scraped() -> None:
    metrics = GatewayMetrics()
    counts = {"repaired": 1}
    metrics.watch_telemetry_events(lambda: counts)
    assert value(metrics, "meterline_telemetry_events_total", event="repaired") == 1
    counts.update(repaired=3, usage_dropped=2)
    assert value(metrics, "meterline_telemetry_events_total", event="repaired") == 3
    assert value(metrics, "meterline_telemetry_events_total", event="usage_dropped") == 2
