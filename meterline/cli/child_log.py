"""A supervised child's stderr, relayed line by line and remembered, so `meterline up` can name
why a child failed (its last error, not "exited with code 3") and what it reported on exit."""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import IO, BinaryIO

_LOCK = threading.Lock()
"""One line at a time on our stderr, whichever child wrote it."""

_CLI_ERROR = re.compile(r"^meterline: error: (?P<cause>.+)$")
_LOGGED_ERROR = re.compile(r"^(?:\S+ \S+ )?(?:ERROR|CRITICAL)(?::\s+| [\w.]+: )(?P<cause>.+)$")
_EXCEPTION = re.compile(r"^(?P<cause>[A-Za-z_][\w.]*(?:Error|Exception|Failed|Exit)\b(?::.*)?)$")


class ChildLog:
    """Copies `stream` to `out` line by line in a thread, keeping the last `keep` lines."""

    def __init__(self, name: str, stream: IO[bytes], out: BinaryIO, keep: int = 400) -> None:
        self.name = name
        self.lines: deque[str] = deque(maxlen=keep)
        self._stream = stream
        self._out = out
        self._thread = threading.Thread(target=self._relay, name=f"{name}-stderr", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        with self._stream:
            for raw in iter(self._stream.readline, b""):
                with _LOCK:
                    try:
                        self._out.write(raw)
                        self._out.flush()
                    except (OSError, ValueError):  # our stderr closed: keep remembering
                        pass
                self.lines.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait until the child's stderr is closed (it exited) and every line is relayed."""
        self._thread.join(timeout_s)

    def cause(self) -> str | None:
        """The child's last word on why it failed: its `meterline: error:` line, its last
        ERROR/CRITICAL log line or the exception ending a traceback, else its last line."""
        for line in reversed(self.lines):
            for pattern in (_CLI_ERROR, _LOGGED_ERROR, _EXCEPTION):
                found = pattern.match(line.strip())
                if found is not None:
                    return found.group("cause").strip()
        return next((line.strip() for line in reversed(self.lines) if line.strip()), None)

    def last(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The last line matching `pattern` (searched anywhere in the line)."""
        for line in reversed(self.lines):
            found = pattern.search(line)
            if found is not None:
                return found
        return None
