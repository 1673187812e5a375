"""Turn SIGTERM into a stop request without deadlocking.

`Event.set()` inside a signal handler can deadlock: the handler runs on the main thread, which
may be holding the event's internal lock inside `Event.wait()`. Setting it from a short-lived
thread avoids that.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def set_on_sigterm(stop: threading.Event) -> Any:
    """Install the handler; returns the previous one so callers can restore it."""

    def handler(signum: int, frame: object) -> None:
        threading.Thread(target=stop.set, name="sigterm").start()

    return signal.signal(signal.SIGTERM, handler)
