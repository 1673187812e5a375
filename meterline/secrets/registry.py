"""`SecretRegistry`: every secret of one process, by reference, with one backend of each kind.

Every reference is `live()`: fetched once when first asked for (at startup, by `preload`) and
refreshed in the background between `start()` and `stop()`. `status()` feeds readiness, /metrics
and `secrets check`. `install()` makes a registry the one behind `meterline.secrets.resolve()`
and `live_secret()`, so code that reads a setting uses the process's backends and settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping

from meterline.config import MeterlineConfig, SecretsConfig
from meterline.secrets.aws import AwsSecretsManagerBackend
from meterline.secrets.base import SecretBackend, SecretResolutionError, SecretVersion, now
from meterline.secrets.config_refs import config_references
from meterline.secrets.env import EnvBackend
from meterline.secrets.file import FileBackend
from meterline.secrets.live import LiveSecret, SecretStatus
from meterline.secrets.reference import Reference, parse_reference
from meterline.secrets.vault import VaultBackend

COLLECTOR_ONLY = "collector."
"""Config paths only the collector reads; the gateway's `preload` leaves them alone."""
DASHBOARD_ONLY = "dashboard."
"""Config paths only the dashboard reads (its password, resolved by dashboards/access.py)."""


class SecretRegistry:
    def __init__(
        self, settings: SecretsConfig | None = None, backends: Mapping[str, SecretBackend] | None = None
    ) -> None:
        """`backends` replaces backends by name (tests); the rest are built on first use."""
        self.settings = settings or SecretsConfig()
        self._backends: dict[str, SecretBackend] = dict(backends or {})
        self._live: dict[str, LiveSecret] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = threading.RLock()
        self._running = False

    def backend(self, name: str) -> SecretBackend:
        with self._lock:
            if name not in self._backends:
                self._backends[name] = self._build(name)
            return self._backends[name]

    def _build(self, name: str) -> SecretBackend:
        if name == "env":
            return EnvBackend()
        if name == "file":
            return FileBackend()
        if name == "aws-secretsmanager":
            return AwsSecretsManagerBackend()
        if name == "vault":
            return VaultBackend(self.settings.vault)
        raise ValueError(f"no secret backend {name!r}")

    def fetch(self, value: str) -> tuple[Reference, SecretVersion]:
        """Fetch once, uncached (for `secrets check`)."""
        reference = parse_reference(value)
        if reference.is_literal:
            return reference, SecretVersion(value, None, now())
        return reference, self.backend(reference.backend).fetch(reference)

    def resolve(self, value: str) -> str:
        """The current value a setting stands for (a literal is itself)."""
        return self.live(value).reveal()

    def live(self, value: str) -> LiveSecret:
        """The live secret for `value` (one per reference, however many deployments share it);
        the first call fetches it and raises SecretResolutionError if it cannot."""
        with self._lock:
            if value not in self._live:
                reference, first = self.fetch(value)
                refresh = None if reference.is_literal else reference.refresh_seconds or self.settings.refresh_seconds
                backend = self.backend(reference.backend) if not reference.is_literal else EnvBackend()
                self._live[value] = LiveSecret(reference, backend, first, refresh)
                self._maybe_start(self._live[value])
            return self._live[value]

    def preload(self, config: MeterlineConfig) -> None:
        """Resolve every reference in `config` now; the first that fails raises
        SecretResolutionError naming it, its backend, the reason and the config field."""
        for path, value, _provider in config_references(config):
            if path.startswith(COLLECTOR_ONLY):
                continue  # the collector resolves its principals' tokens itself (collector/auth.py)
            if path.startswith(DASHBOARD_ONLY):
                continue  # the dashboard's process resolves its password itself (dashboards/access.py)
            try:
                self.live(value)
            except SecretResolutionError as exc:
                raise SecretResolutionError(exc.reference, exc.backend, f"{exc.reason} (at {path})") from None

    def status(self) -> list[SecretStatus]:
        with self._lock:
            return [s.status() for s in self._live.values() if not s.reference.is_literal]

    def degraded(self) -> list[SecretStatus]:
        return [s for s in self.status() if s.degraded]

    # -- background refresh ---------------------------------------------------------------
    async def start(self) -> None:
        self._running = True
        for secret in list(self._live.values()):
            self._maybe_start(secret)

    def _maybe_start(self, secret: LiveSecret) -> None:
        if not self._running or secret.refresh_seconds is None:
            return
        if any(t.get_name() == f"secret-refresh:{id(secret)}" for t in self._tasks):
            return
        task = asyncio.get_running_loop().create_task(secret.run(), name=f"secret-refresh:{id(secret)}")
        self._tasks.append(task)

    async def stop(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.close()

    def close(self) -> None:
        """Release backend connections (the Vault HTTP client)."""
        vault = self._backends.get("vault")
        if isinstance(vault, VaultBackend):
            vault.close()


_installed: SecretRegistry | None = None


def install(registry: SecretRegistry | None) -> None:
    """Make `registry` the one behind `resolve()` for this process (None: a fresh one per call)."""
    global _installed
    _installed = registry


def installed() -> SecretRegistry | None:
    return _installed


def resolve(value: str) -> str:
    """The secret a config value stands for now: the referenced value, or the literal itself.
    Raises SecretResolutionError (naming reference, backend and reason, never a value)."""
    if _installed is not None:
        return _installed.resolve(value)
    return SecretRegistry().fetch(value)[1].value  # no process registry (CLI, tests): fetched afresh


def live_secret(value: str) -> LiveSecret:
    """The installed registry's live secret for `value` (refreshed in the background while the
    gateway runs); without one (CLI, tests), a secret fetched now and never refreshed."""
    if _installed is not None:
        return _installed.live(value)
    reference, first = SecretRegistry().fetch(value)
    return LiveSecret(reference, EnvBackend(), first, None)
