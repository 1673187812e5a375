"""What every secret backend shares: the reference it is given, the version it returns, the
error it raises. A backend is any object with `fetch(reference) -> SecretVersion`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from meterline.secrets.reference import Reference


class SecretResolutionError(Exception):
    """A reference that cannot be resolved. The message names the reference, the backend and
    the reason, and never carries a secret value."""

    def __init__(self, reference: str, backend: str, reason: str) -> None:
        super().__init__(f"cannot resolve secret reference {reference!r} ({backend}): {reason}")
        self.reference = reference
        self.backend = backend
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One fetched version of a secret. `repr` never shows the value."""

    value: str = field(repr=False)
    version: str | None
    """The backend's version id (Secrets Manager VersionId, Vault KV version, file mtime); None for env."""
    fetched_at: dt.datetime
    created_at: dt.datetime | None = None
    """When the backend says this version was created, where it says (for the age in `secrets check`)."""


class SecretBackend(Protocol):
    """One place secrets live. `fetch` is blocking (callers on an event loop run it in a thread)
    and raises SecretResolutionError, never another exception."""

    name: str

    def fetch(self, reference: Reference) -> SecretVersion: ...


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
