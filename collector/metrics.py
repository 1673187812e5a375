"""The collector's Prometheus metrics, served at GET /metrics.

Each `CollectorMetrics` owns its registry (never the process-wide default), so two collectors
in one process (tests) never share counters. Labels are bounded: the rule (`field.rule`, from
a fixed set of checks) and the source, never a request id, an agent or a model.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.quarantined = Counter(
            "meterline_collector_quarantined_records",
            "Usage records refused as invalid and written to the quarantine.",
            registry=self.registry,
        )
        self.quarantine_reasons = Counter(
            "meterline_collector_quarantine_reasons",
            "Reasons found in quarantined usage records, by rule (a record may have several).",
            ["rule"],
            registry=self.registry,
        )

        self.loop_errors = Counter(
            "meterline_collector_loop_errors",
            "Faults a background loop survived, by loop (publish, compaction, catalog, grpc): logged, "
            "the item set aside or retried, the loop went on.",
            ["loop"],
            registry=self.registry,
        )
        self.segments_set_aside = Counter(
            "meterline_collector_wal_segments_set_aside",
            "WAL segments that could not be published for what they hold, moved to wal/set-aside/ so "
            "the later ones could be (their records wait there for an operator).",
            registry=self.registry,
        )

    def count_quarantined(self, records: int, rules: list[str]) -> None:
        self.quarantined.inc(records)
        for rule in rules:
            self.quarantine_reasons.labels(rule).inc()

    def render(self) -> bytes:
        body: bytes = generate_latest(self.registry)
        return body
