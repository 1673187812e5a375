"""`/metrics` for secret references: refresh failures and degraded references, read from the
process's `SecretRegistry` at scrape time. The label is the reference (never a value)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from meterline.secrets import SecretRegistry


class SecretMetrics(Collector):
    def __init__(self, secrets: SecretRegistry) -> None:
        self._secrets = secrets

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        failures = CounterMetricFamily(
            "meterline_secret_refresh_failures",
            "Failed background or on-demand refreshes of a secret reference.",
            labels=["reference", "backend"],
        )
        degraded = GaugeMetricFamily(
            "meterline_secret_degraded",
            "1 while a secret's last refresh failed (the last good value is in use).",
            labels=["reference", "backend"],
        )
        for status in self._secrets.status():
            if status.live:
                failures.add_metric([status.reference, status.backend], status.failures)
                degraded.add_metric([status.reference, status.backend], 1.0 if status.degraded else 0.0)
        yield failures
        yield degraded
