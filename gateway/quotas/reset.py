"""What the gateway does when the quota store's counters were lost (`redis_store.StoreReset`).

Redis without persistence that restarts, a failover to a replica that never had the data, or a
FLUSHALL empties every counter: every agent's limits start again from zero, so a day's token
and dollar caps admit up to twice their amount. Each replica that notices counts it in
`meterline_quota_store_resets_total` and logs an error; the one replica whose request wrote the
new epoch also sends an alarm to the `alerts.oncall_channels` (off the request path, in a
thread: the notifiers are blocking HTTP clients). The fix is `meterline quotas rebuild`, which
restores the day's and month's counters from the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from alarms.message import Message
from alarms.notifier import Notifier, build_notifier, deliver
from gateway.metrics import GatewayMetrics
from gateway.quotas.redis_store import StoreReset
from meterline.config import MeterlineConfig

log = logging.getLogger(__name__)

RunLater = Callable[[Coroutine[Any, Any, None]], None]


def reset_message(reset: StoreReset, *, instance: str, key_prefix: str, dashboard_url: str | None) -> Message:
    return Message(
        title="Meterline: quota counters were reset",
        lines=[
            "The quota store (Redis) lost its counters: it restarted without persistence, failed over, or was flushed.",
            "Every agent's and team's limits restarted from zero: today's and this month's caps can be passed.",
            "Restore them from the ledger now: meterline quotas rebuild",
            "Then give Redis persistence (appendonly yes, appendfsync everysec) or a managed service that keeps data.",
            f"Noticed by gateway {instance}; key prefix {key_prefix}.",
        ],
        severity="critical",
        link=dashboard_url,
        fields={
            "kind": "quota_store_reset",
            "previous_epoch": reset.previous_epoch,
            "epoch": reset.epoch,
            "gateway_instance": instance,
            "key_prefix": key_prefix,
        },
    )


class ResetAlarm:
    """The `on_reset` listener of the gateway's quota service."""

    def __init__(self, config: MeterlineConfig, metrics: GatewayMetrics, run_later: RunLater, *, instance: str) -> None:
        self._metrics = metrics
        self._run_later = run_later
        self._instance = instance
        self._key_prefix = config.quota_store.key_prefix
        self._dashboard_url = config.alerts.dashboard_url
        self._attempts = config.alerts.delivery_attempts
        channels = config.alerts.channels
        self._notifiers: list[Notifier] = [
            build_notifier(name, channels[name]) for name in config.alerts.oncall_channels
        ]
        self.delivered: list[tuple[str, str | None]] = []
        """(channel, error or None) per delivery made, for tests and diagnostics."""

    def __call__(self, reset: StoreReset) -> None:
        if not reset.already_reported:
            self._metrics.quota_store_resets.inc()
            log.error(
                "quota store counters were reset (epoch %s -> %s): limits restarted from zero; "
                "run `meterline quotas rebuild` to restore today's and this month's counters from the ledger",
                reset.previous_epoch,
                reset.epoch,
            )
        if reset.first_seen_here and self._notifiers:
            message = reset_message(
                reset, instance=self._instance, key_prefix=self._key_prefix, dashboard_url=self._dashboard_url
            )
            self._run_later(asyncio.to_thread(self._deliver, message))

    def _deliver(self, message: Message) -> None:
        for notifier in self._notifiers:
            error, tries = deliver(notifier, message, attempts=self._attempts)
            self.delivered.append((notifier.name, error))
            if error is not None:
                log.warning("quota store reset alarm: %s failed after %d tries: %s", notifier.name, tries, error)
