"""A secret the gateway checks presented values against (master key, key-hashing secret, JWT
signing key), with the value a rotation replaced still accepted for a grace period.

Why a grace: a rotation reaches each replica within one refresh interval, and clients holding
the old value (an operator's shell, a JWT signed a minute ago, keys hashed under the old
secret) need time to move on. New values are always made with the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from meterline.secrets import LiveSecret, SecretVersion


class RotatingSecret:
    __slots__ = ("_clock", "_grace_seconds", "_listeners", "_previous", "_previous_until", "secret")

    def __init__(self, secret: LiveSecret, grace_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self._grace_seconds = grace_seconds
        self._clock = clock
        self._previous: str | None = None
        self._previous_until = 0.0
        self._listeners: list[Callable[[], None]] = []
        secret.on_change(self._rotated)

    @classmethod
    def fixed(cls, value: str) -> RotatingSecret:
        return cls(LiveSecret.fixed(value), 0.0)

    def __repr__(self) -> str:
        return f"RotatingSecret({self.secret!r})"

    @property
    def current(self) -> str:
        return self.secret.reveal()

    def previous(self) -> tuple[str, float] | None:
        """The value the last rotation replaced and until when it is accepted, while it is."""
        if self._previous is None or self._clock() >= self._previous_until:
            return None
        return self._previous, self._previous_until

    def accepted(self) -> list[tuple[str, float | None]]:
        """(value, accepted until) for the current value (None: no end) and a previous one in grace."""
        previous = self.previous()
        return [(self.current, None), *([previous] if previous is not None else [])]

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after each rotation (the previous value is already in place)."""
        self._listeners.append(listener)

    def _rotated(self, new: SecretVersion, old: SecretVersion) -> None:
        self._previous, self._previous_until = old.value, self._clock() + self._grace_seconds
        for listener in self._listeners:
            listener()
