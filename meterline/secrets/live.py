"""`LiveSecret`: a secret value kept current in the background.

Callers read `current` once per use (a request attempt keeps what it read, so requests in flight
finish with the key they started with). A refresh runs every `refresh_seconds`; `refresh_now()`
also runs one at once, single-flight: however many callers ask while one is running, they all
wait for that one. A failed refresh keeps the last good value, is logged (never the value),
counted in `failures` and marks the secret `degraded` until a refresh succeeds.

Components that hold something built from a secret (a connection pool from a database URL, a
hasher from the key-hashing secret) register `on_change(listener)`: a new value is passed to
every listener, on the event loop, right after it replaces the old one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from meterline.secrets.base import SecretBackend, SecretResolutionError, SecretVersion
from meterline.secrets.base import now as now_utc
from meterline.secrets.env import EnvBackend
from meterline.secrets.reference import Reference, parse_reference

Listener = Callable[[SecretVersion, SecretVersion], None]
"""Called with (new, old) when a refresh brings a different value."""

PREVIOUS_KEPT = 3
"""Replaced values a secret remembers (`previous_values`): a provider may quote the key a request
started with after a rotation, and whoever scrubs provider answers must know it."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SecretStatus:
    """What readiness and `meterline secrets check` show of one reference: never its value."""

    reference: str
    backend: str
    version: str | None
    fetched_at: dt.datetime | None
    created_at: dt.datetime | None
    live: bool
    """Refreshed in the background (every reference; a literal value is not)."""
    failures: int = 0
    error: str | None = None
    """The last refresh's error; None while the last refresh succeeded."""

    @property
    def degraded(self) -> bool:
        return self.error is not None


class LiveSecret:
    def __init__(
        self, reference: Reference, backend: SecretBackend, first: SecretVersion, refresh_seconds: float | None
    ) -> None:
        """`refresh_seconds` None: never refreshed (a literal value)."""
        self.reference = reference
        self.refresh_seconds = refresh_seconds
        self._backend = backend
        self._current = first
        self._inflight: asyncio.Task[SecretVersion] | None = None
        self.refreshes = 0
        """Refreshes started (the first fetch excluded)."""
        self.failures = 0
        self.last_error: str | None = None
        self._listeners: list[Listener] = []
        self._soon_at = float("-inf")
        self._previous: tuple[str, ...] = ()

    @classmethod
    def fixed(cls, value: str) -> LiveSecret:
        """A value that never changes (a literal, or a secret generated and kept on disk)."""
        return cls(parse_reference(value), EnvBackend(), SecretVersion(value, None, now_utc()), None)

    def on_change(self, listener: Listener) -> None:
        """Call `listener(new, old)` whenever a refresh brings a different value."""
        self._listeners.append(listener)

    def __repr__(self) -> str:
        return f"LiveSecret({self.reference.display!r}, version={self._current.version!r})"

    @property
    def current(self) -> SecretVersion:
        return self._current

    @property
    def version(self) -> str | None:
        return self._current.version

    def reveal(self) -> str:
        return self._current.value

    @property
    def previous_values(self) -> tuple[str, ...]:
        """The values this secret had before the current one, newest first (at most PREVIOUS_KEPT)."""
        return self._previous

    @property
    def degraded(self) -> bool:
        return self.last_error is not None

    def status(self) -> SecretStatus:
        c = self._current
        return SecretStatus(
            self.reference.display,
            self.reference.backend,
            c.version,
            c.fetched_at,
            c.created_at,
            live=self.refresh_seconds is not None,
            failures=self.failures,
            error=self.last_error,
        )

    async def refresh_now(self, stale: str | None = None) -> SecretVersion:
        """Fetch the secret now (joining a refresh already running) and return the current version.

        `stale`: the value a caller saw refused; when the current value already differs (someone
        refreshed meanwhile), that value is returned without another fetch."""
        if stale is not None and stale != self._current.value:
            return self._current
        if self.refresh_seconds is None:
            return self._current
        task = self._inflight
        if task is None:
            task = self._inflight = asyncio.get_running_loop().create_task(self._refresh())
            task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def refresh_soon(self, min_interval: float) -> None:
        """Start a refresh in the background, unless one is running or this started one less than
        `min_interval` seconds ago. For a presented value that matches nothing: it may be the next
        version, rotated in the backend and not fetched yet (never awaited: no I/O for the caller)."""
        if self.refresh_seconds is None or self._inflight is not None:
            return
        started = time.monotonic()
        if started - self._soon_at < min_interval:
            return
        self._soon_at = started
        task = self._inflight = asyncio.get_running_loop().create_task(self._refresh())
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[SecretVersion]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _refresh(self) -> SecretVersion:
        self.refreshes += 1
        before = self._current
        try:
            fresh = await asyncio.to_thread(self._backend.fetch, self.reference)
        except SecretResolutionError as exc:
            return self._failed(exc.reason)
        except Exception as exc:  # noqa: BLE001 - a backend bug must not kill the refresh loop
            return self._failed(f"unexpected {type(exc).__name__}")
        self._current = fresh
        if self.last_error is not None:
            log.info("secret %s (%s): refresh works again", self.reference.display, self.reference.backend)
        self.last_error = None
        if fresh.value != before.value:
            self._previous = (before.value, *(v for v in self._previous if v != fresh.value))[:PREVIOUS_KEPT]
            self._notify(fresh, before)
        if fresh.version != before.version or fresh.value != before.value:
            log.info(
                "secret %s (%s): version %s replaces %s",
                self.reference.display,
                self.reference.backend,
                fresh.version,
                before.version,
            )
        return fresh

    def _notify(self, fresh: SecretVersion, before: SecretVersion) -> None:
        for listener in list(self._listeners):
            try:
                listener(fresh, before)
            except Exception as exc:  # noqa: BLE001 - one broken listener must not stop the others
                log.warning(
                    "secret %s (%s): a component could not take the new version (%s)",
                    self.reference.display,
                    self.reference.backend,
                    type(exc).__name__,
                )

    def _failed(self, reason: str) -> SecretVersion:
        self.failures += 1
        self.last_error = reason
        log.warning(
            "secret %s (%s): refresh failed, keeping version %s: %s",
            self.reference.display,
            self.reference.backend,
            self._current.version,
            reason,
        )
        return self._current

    async def run(self) -> None:
        """Refresh every `refresh_seconds` until cancelled."""
        if self.refresh_seconds is None:
            return
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh_now()
