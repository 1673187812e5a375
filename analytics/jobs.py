"""Run the marts: once (`meterline analytics run`) or on a timer (`meterline analytics serve`),
each tick followed by the budget alarms when the caller wires them in."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from analytics.incremental import MART_NAMES, Progress, refresh
from analytics.ledger_source import LedgerSource
from meterline.layout import DataLayout

logger = logging.getLogger(__name__)

MARTS: tuple[str, ...] = MART_NAMES
"""Every mart by name, in build order (`spend_monthly` rolls `spend_daily` up)."""

AfterRun = Callable[[], object]
"""Work that reads the fresh marts (the budget alarms); runs after every successful mart run."""


def run_once(
    layout: DataLayout, timezone: str = "UTC", progress: Progress | None = None, ledger: LedgerSource | None = None
) -> dict[str, int]:
    """Bring every mart under `layout` up to date with `ledger` (default: the one under the same
    data dir; only changed days are rebuilt); returns rows per mart. Errors propagate."""
    return refresh(layout, timezone, progress, ledger)


def serve_forever(
    layout: DataLayout,
    interval_seconds: float,
    stop: threading.Event,
    timezone: str = "UTC",
    after: AfterRun | None = None,
    ledger: LedgerSource | None = None,
) -> None:
    """Refresh the marts (then `after`) every `interval_seconds` until `stop` is set, then once
    more and return.

    The final run means records that reached the ledger just before shutdown still reach the
    marts. A failed run is logged and retried on the next tick: a transient problem (a file
    vanishing under compaction, a full disk, a chat webhook down) must not stop the loop for good.
    """
    while not stop.is_set():
        _run_logged(layout, timezone, after, ledger)
        stop.wait(interval_seconds)
    _run_logged(layout, timezone, after, ledger)


def _run_logged(layout: DataLayout, timezone: str, after: AfterRun | None, ledger: LedgerSource | None) -> None:
    try:
        rows = run_once(layout, timezone, ledger=ledger)
    except Exception:
        logger.exception("analytics run failed; retrying at the next interval")
        return
    logger.info("analytics run done: %s", ", ".join(f"{name}={count} rows" for name, count in rows.items()))
    if after is None:
        return
    try:
        after()
    except Exception:
        logger.exception("alarms run failed; retrying at the next interval")
