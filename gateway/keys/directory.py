"""The request path's view of the key store: `Authorization` header -> AgentIdentity.

An in-memory map {keyed hash -> identity} built from one store snapshot at startup and rebuilt
every `key_store.refresh_seconds`, so a revoke or rotation made on any replica (or by the CLI)
reaches this one within that interval. Authentication is synchronous and touches no I/O: one
HMAC, one dict lookup, one clock read (a verified token is remembered, so a JWT costs one
signature check per token, not per request). Last use is noted in a dict and written to the
store in one batch per refresh.

Rotations (docs/secrets.md): the master key is checked against its current value and, for the
rotation grace, the one it replaced. After the key-hashing secret rotates, a key that matches
only under the previous secret (during the grace) still authenticates, and its hash under the
current secret is written to the store with the next batch, so it keeps working after the grace
on every replica. Neither costs the request path anything before a rotation happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.auth import MASTER_AGENT_ID, AgentIdentity
from gateway.errors import GatewayNotReady, InvalidApiKey
from gateway.keys.hashing import Hasher, RotatingHasher
from gateway.keys.rotating import RotatingSecret
from gateway.keys.store import AgentRecord, KeyStore, KeyStoreError, Snapshot
from gateway.keys.tokens import TokenError, TokenIssuer, looks_like_jwt
from meterline.config import Limits

log = logging.getLogger(__name__)

TOKEN_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class KeyMatch:
    identity: AgentIdentity
    key_id: str | None
    """None for the master key."""
    valid_until: float | None


def _identity(agent: AgentRecord, alias: str | None) -> AgentIdentity:
    return AgentIdentity(
        agent_id=agent.agent_id,
        team=agent.team,
        project=agent.project,
        key_alias=alias,
        tags=dict(agent.tags),
        models=frozenset(agent.models) if agent.models is not None else None,
        limits=Limits.model_validate(agent.limits),
    )


class KeyDirectory:
    """Sync `authenticate` / `lookup` / `len` over a snapshot the background task refreshes."""

    def __init__(
        self,
        *,
        master_key: str | RotatingSecret | None,
        refresh_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._master_key = RotatingSecret.fixed(master_key) if isinstance(master_key, str) else master_key
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._hasher: Hasher | None = None
        self._master: dict[str, KeyMatch] = {}
        self._rehashed: dict[str, str] = {}
        self._tokens: TokenIssuer | None = None
        self._store: KeyStore | None = None
        self._by_hash: dict[str, KeyMatch] = {}
        self._by_key_id: dict[str, KeyMatch] = {}
        self._agents: dict[str, AgentRecord] = {}
        self._identities: dict[tuple[str, str | None], AgentIdentity] = {}
        self._verified_tokens: dict[str, tuple[str, float]] = {}
        self._used: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._version: int | None = None

    @property
    def ready(self) -> bool:
        return self._hasher is not None

    async def start(self, store: KeyStore, hasher: Hasher, tokens: TokenIssuer | None) -> None:
        """Load the first snapshot (before the gateway reports ready) and start refreshing."""
        self._store, self._hasher, self._tokens = store, hasher, tokens
        self._install_master()
        if self._master_key is not None:
            self._master_key.on_change(self._install_master)
        if isinstance(hasher, RotatingHasher):
            hasher.on_change(self._install_master)
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="key-directory-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush_used()

    async def refresh(self) -> None:
        """Write pending last-used times, then swap in a fresh snapshot if the store changed.
        (Expiry and grace ends need no refresh: authentication checks them itself.)"""
        assert self._store is not None, "start() first"
        await self._flush_used()
        if self._version is not None and await self._store.version() == self._version:
            return
        snapshot = await self._store.snapshot()
        self._install(snapshot)
        self._version = snapshot.version

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except KeyStoreError as exc:
                log.warning("key store refresh failed, keeping the previous snapshot: %s", exc)

    async def _flush_used(self) -> None:
        if self._rehashed and self._store is not None:
            rehashed, self._rehashed = self._rehashed, {}
            try:
                await self._store.add_key_hashes(rehashed, self._clock())
                log.info("key store: %d keys stored again under the current key_store.hash_secret", len(rehashed))
            except KeyStoreError as exc:
                self._rehashed = {**rehashed, **self._rehashed}
                log.warning("could not store %d keys under the new hash secret: %s", len(rehashed), exc)
        if self._used and self._store is not None:
            used, self._used = self._used, {}
            try:
                await self._store.touch_last_used(used)
            except KeyStoreError as exc:
                log.warning("could not record last use of %d keys: %s", len(used), exc)

    def _install(self, snapshot: Snapshot) -> None:
        assert self._hasher is not None
        now = self._clock()
        identities: dict[tuple[str, str | None], AgentIdentity] = {}
        by_hash: dict[str, KeyMatch] = {}
        by_key_id: dict[str, KeyMatch] = {}
        for key in snapshot.keys:
            agent = snapshot.agents.get(key.agent_id)
            if agent is None or not key.valid_at(now):
                continue
            cache_key = (agent.agent_id, key.alias)
            identity = identities.get(cache_key)
            if identity is None:
                previous = self._agents.get(agent.agent_id)
                identity = self._identities.get(cache_key) if previous == agent else None
                identity = identity or _identity(agent, key.alias)
                identities[cache_key] = identity
            match = KeyMatch(identity, key.key_id, key.valid_until)
            by_hash[key.key_hash] = match
            by_key_id[key.key_id] = match
        for key_hash, key_id in snapshot.extra_hashes.items():
            if key_id in by_key_id:
                by_hash.setdefault(key_hash, by_key_id[key_id])
        self._agents, self._identities = dict(snapshot.agents), identities
        self._by_hash, self._by_key_id = by_hash, by_key_id

    def _install_master(self) -> None:
        """LiteLLM-proxy compatibility: the master key also serves requests, billed to `master`.
        Rebuilt when the master key or the hashing secret rotates."""
        if self._master_key is None or self._hasher is None:
            return
        master = AgentIdentity(agent_id=MASTER_AGENT_ID, team="admin", key_alias="master-key")
        self._master = {
            self._hasher.hash(value): KeyMatch(master, None, until) for value, until in self._master_key.accepted()
        }

    def __len__(self) -> int:
        return len(self._by_hash) + (1 if self._master else 0)

    def match_key(self, key: str) -> KeyMatch | None:
        """The key's match if it is valid now (keys only, not tokens)."""
        if self._hasher is None:
            raise GatewayNotReady("The gateway is starting; the key directory is not loaded yet.")
        key_hash = self._hasher.hash(key)
        match = self._by_hash.get(key_hash) or self._master.get(key_hash)
        if match is None and (previous := self._hasher.previous()) is not None:
            match = self._by_hash.get(previous.hash(key))
            if match is not None and match.key_id is not None:
                self._rehashed[match.key_id] = key_hash
        if match is None or (match.valid_until is not None and self._clock() >= match.valid_until):
            return None
        return match

    def _match_token(self, token: str) -> KeyMatch | None:
        now = self._clock()
        verified = self._verified_tokens.get(token)
        if verified is None:
            if self._tokens is None:
                return None
            try:
                claims = self._tokens.verify(token)
            except TokenError:
                return None
            verified = (claims.key_id, claims.expires_at)
            if len(self._verified_tokens) >= TOKEN_CACHE_MAX:
                self._verified_tokens = {k: v for k, v in self._verified_tokens.items() if v[1] > now}
                if len(self._verified_tokens) >= TOKEN_CACHE_MAX:
                    self._verified_tokens = {}
            self._verified_tokens[token] = verified
        key_id, expires_at = verified
        match = self._by_key_id.get(key_id)
        if now >= expires_at or match is None or (match.valid_until is not None and now >= match.valid_until):
            return None
        return match

    def lookup(self, key: str) -> AgentIdentity | None:
        """The identity behind an agent key or token, or None."""
        match = self._match_token(key) if looks_like_jwt(key) else self.match_key(key)
        if match is None:
            return None
        if match.key_id is not None:
            self._used[match.key_id] = self._clock()
        return match.identity

    def authenticate(self, authorization: str | None) -> AgentIdentity:
        """The identity behind an `Authorization: Bearer <key or token>` header, or InvalidApiKey (401)."""
        if not authorization:
            raise InvalidApiKey("Missing API key. Send it as 'Authorization: Bearer <agent key>'.")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise InvalidApiKey("Malformed Authorization header. Expected 'Bearer <agent key>'.")
        identity = self.lookup(key)
        if identity is None:
            raise InvalidApiKey("Incorrect, expired or revoked API key provided.")
        return identity
