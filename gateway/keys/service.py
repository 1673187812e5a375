"""Open the key store and its secrets from the config: one call for the gateway and the CLI.

Every secret here is live (docs/secrets.md): the master key and the key-hashing secret accept
their previous value for `key_store.rotation_grace_seconds` after a rotation, the JWT signing
key for the longest a token lives; a rotated database_url reconnects the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.keys.admin import KeyAdmin
from gateway.keys.declared import apply, plan
from gateway.keys.directory import KeyDirectory
from gateway.keys.hashing import Hasher, RotatingHasher, equal, load_secret
from gateway.keys.postgres_store import PostgresKeyStore
from gateway.keys.rotating import RotatingSecret
from gateway.keys.sqlite_store import FILENAME, SqliteKeyStore
from gateway.keys.store import KeyStore, KeyStoreError
from gateway.keys.tokens import MAX_TOKEN_SECONDS, TokenIssuer
from meterline.config import MeterlineConfig
from meterline.layout import DataLayout
from meterline.secrets import is_reference, live_secret

log = logging.getLogger("gateway.keys")

HASH_SECRET_FILE = "key-hash.secret"
MASTER_RECHECK_SECONDS = 10.0
"""A master key that matches nothing refreshes the master key reference at most this often."""
JWT_SECRET_FILE = "jwt-signing.secret"


@dataclass
class KeyServices:
    store: KeyStore
    hasher: Hasher
    tokens: TokenIssuer
    admin: KeyAdmin

    async def close(self) -> None:
        await self.store.close()


def data_dir_of(config: MeterlineConfig) -> Path:
    return DataLayout.at(config.storage.data_dir).root


def build_store(config: MeterlineConfig) -> KeyStore:
    url = config.key_store.database_url
    if url:
        return PostgresKeyStore(live_secret(url))
    return SqliteKeyStore(data_dir_of(config) / FILENAME)


async def open_keys(config: MeterlineConfig, clock: Callable[[], float] = time.time) -> KeyServices:
    """Resolve the secrets, open the store (creating its schema) and log where each came from."""
    settings = config.key_store
    data_dir = data_dir_of(config)
    hash_secret = load_secret(settings.hash_secret, data_dir, HASH_SECRET_FILE, "key_store.hash_secret", log)
    hasher = RotatingHasher(RotatingSecret(hash_secret, settings.rotation_grace_seconds, clock))
    signing = load_secret(settings.jwt_signing_key, data_dir, JWT_SECRET_FILE, "key_store.jwt_signing_key", log)
    tokens = TokenIssuer(RotatingSecret(signing, MAX_TOKEN_SECONDS, clock), clock)
    store = build_store(config)
    await store.open()
    log.info("key store: %r", store)
    admin = KeyAdmin(store, hasher, grace_seconds=settings.rotation_grace_seconds, clock=clock)
    return KeyServices(store, hasher, tokens, admin)


async def upsert_declared(services: KeyServices, config: MeterlineConfig) -> None:
    """Startup: declared agents and their pre-issued keys into the store (source=config)."""
    store = services.store
    changes = plan(
        config.agents, await store.list_agents(), await store.list_keys(), services.hasher, services.admin.clock(),
        full=False,
    )  # fmt: skip
    await apply(services.admin, changes)
    if changes:
        counts = {action: sum(1 for c in changes if c.action == action) for action in ("create", "update", "key")}
        log.info(
            "key store: %d agents created, %d updated, %d pre-issued keys stored from the config",
            counts["create"], counts["update"], counts["key"],
        )  # fmt: skip


class KeyRuntime:
    """The gateway's identity side: built in `create_app`, started in its lifespan."""

    def __init__(self, config: MeterlineConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        master = config.general_settings.master_key
        grace = config.key_store.rotation_grace_seconds
        self.master = RotatingSecret(live_secret(master), grace, clock) if master else None
        self.directory = KeyDirectory(
            master_key=self.master, refresh_seconds=config.key_store.refresh_seconds, clock=clock
        )
        self.services: KeyServices | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def master_key(self) -> str | None:
        """The master key's current value (None: the admin API is off)."""
        return self.master.current if self.master is not None else None

    def is_master_key(self, presented: str) -> bool:
        """The current master key, or the previous one during the rotation grace."""
        if self.master is None:
            return False
        if any(equal(presented, value) for value, _until in self.master.accepted()):
            return True
        self.master.secret.refresh_soon(MASTER_RECHECK_SECONDS)  # rotated already? the next try knows
        return False

    async def start(self) -> None:
        """Open the store, upsert the declared agents and load the first snapshot."""
        services = await open_keys(self.config, self.clock)
        try:
            await upsert_declared(services, self.config)
            await self.directory.start(services.store, services.hasher, services.tokens)
        except BaseException:
            await services.close()
            raise
        self.services = services
        if isinstance(services.hasher, RotatingHasher):
            services.hasher.on_change(self._declared_changed)
        for agent in self.config.agents:
            if agent.key is not None and is_reference(agent.key):
                live_secret(agent.key).on_change(lambda new, old: self._declared_changed())
        if self.master_key is None:
            log.info("admin API off: no general_settings.master_key configured (/admin/* answers 403)")
        else:
            log.info("admin API on /admin/agents and /admin/keys (master key required)")

    def _declared_changed(self) -> None:
        """A pre-issued key's reference or the hashing secret rotated: store the config's keys
        as they are now (the records they replace end after the grace, like any rotated key)."""
        task = asyncio.get_running_loop().create_task(self._rehash_declared())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _rehash_declared(self) -> None:
        if self.services is None:
            return
        try:
            await upsert_declared(self.services, self.config)
            await self.directory.refresh()
        except KeyStoreError as exc:
            log.warning("key store: could not store the rotated pre-issued keys: %s", exc)

    async def close(self) -> None:
        for task in list(self._background):
            await asyncio.gather(task, return_exceptions=True)
        await self.directory.close()
        if self.services is not None:
            await self.services.close()
            self.services = None
