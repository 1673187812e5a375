"""Open the key store and its secrets from the config: one call for the gateway and the CLI."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.keys.admin import KeyAdmin
from gateway.keys.declared import apply, plan
from gateway.keys.directory import KeyDirectory
from gateway.keys.hashing import KeyHasher, load_secret
from gateway.keys.postgres_store import PostgresKeyStore
from gateway.keys.sqlite_store import FILENAME, SqliteKeyStore
from gateway.keys.store import KeyStore
from gateway.keys.tokens import TokenIssuer
from meterline.config import MeterlineConfig
from meterline.layout import DataLayout
from meterline.secret_refs import resolve

log = logging.getLogger("gateway.keys")

HASH_SECRET_FILE = "key-hash.secret"
JWT_SECRET_FILE = "jwt-signing.secret"


@dataclass
class KeyServices:
    store: KeyStore
    hasher: KeyHasher
    tokens: TokenIssuer
    admin: KeyAdmin

    async def close(self) -> None:
        await self.store.close()


def data_dir_of(config: MeterlineConfig) -> Path:
    return DataLayout.at(config.storage.data_dir).root


def build_store(config: MeterlineConfig) -> KeyStore:
    url = config.key_store.database_url
    if url:
        return PostgresKeyStore(resolve(url))
    return SqliteKeyStore(data_dir_of(config) / FILENAME)


async def open_keys(config: MeterlineConfig, clock: Callable[[], float] = time.time) -> KeyServices:
    """Resolve the secrets, open the store (creating its schema) and log where each came from."""
    settings = config.key_store
    data_dir = data_dir_of(config)
    hasher = KeyHasher(load_secret(settings.hash_secret, data_dir, HASH_SECRET_FILE, "key_store.hash_secret", log))
    signing_key = load_secret(settings.jwt_signing_key, data_dir, JWT_SECRET_FILE, "key_store.jwt_signing_key", log)
    store = build_store(config)
    await store.open()
    log.info("key store: %r", store)
    admin = KeyAdmin(store, hasher, grace_seconds=settings.rotation_grace_seconds, clock=clock)
    return KeyServices(store, hasher, TokenIssuer(signing_key, clock), admin)


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
        self.master_key = resolve(master) if master else None
        self.directory = KeyDirectory(
            master_key=self.master_key, refresh_seconds=config.key_store.refresh_seconds, clock=clock
        )
        self.services: KeyServices | None = None

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
        if self.master_key is None:
            log.info("admin API off: no general_settings.master_key configured (/admin/* answers 403)")
        else:
            log.info("admin API on /admin/agents and /admin/keys (master key required)")

    async def close(self) -> None:
        await self.directory.close()
        if self.services is not None:
            await self.services.close()
            self.services = None
