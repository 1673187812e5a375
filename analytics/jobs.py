"""Run the marts: once (`meterline analytics run`) or on a timer (`meterline analytics serve`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from analytics import spend_daily
from meterline.layout import DataLayout

logger = logging.getLogger(__name__)

MartWriter = Callable[[DataLayout], int]

MARTS: Mapping[str, MartWriter] = {spend_daily.MART: spend_daily.write_spend_daily}
"""Every mart by name, in build order; each writer rebuilds its file and returns its row count."""


def run_once(layout: DataLayout) -> dict[str, int]:
    """Rebuild every mart; returns rows written per mart. Errors propagate to the caller."""
    return {name: write(layout) for name, write in MARTS.items()}


def serve_forever(layout: DataLayout, interval_seconds: float, stop: threading.Event) -> None:
    """Rebuild the marts every `interval_seconds` until `stop` is set, then once more and return.

    The final run means records that reached the ledger just before shutdown still reach the
    marts. A failed run is logged and retried on the next tick: a transient problem (a file
    vanishing under compaction, a full disk) must not stop the marts for good.
    """
    while not stop.is_set():
        _run_logged(layout)
        stop.wait(interval_seconds)
    _run_logged(layout)


def _run_logged(layout: DataLayout) -> None:
    try:
        rows = run_once(layout)
    except Exception:
        logger.exception("analytics run failed; retrying at the next interval")
        return
    logger.info("analytics run done: %s", ", ".join(f"{name}={count} rows" for name, count in rows.items()))
