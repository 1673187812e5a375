"""Agent and key lifecycle, shared by the admin API (gateway/routes/admin.py) and `meterline keys`.

A new key's plaintext is returned exactly once, by `create_key` and `rotate_key`; everything
else shows keys by their public `key_id` and never by hash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway.errors import GatewayError
from gateway.keys.hashing import Hasher, new_key, new_key_id
from gateway.keys.store import AgentExists, AgentRecord, KeyRecord, KeyStore


class NotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class Conflict(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "already_exists"


@dataclass(frozen=True)
class NewKey:
    record: KeyRecord
    key: str
    """The plaintext: shown once, never stored."""


def key_status(key: KeyRecord, now: float) -> str:
    if key.revoked is not None:
        return "revoked"
    if key.expires is not None and now >= key.expires:
        return "expired"
    if key.grace_until is not None:
        return "rotated" if now >= key.grace_until else "rotating"
    return "active"


def key_view(key: KeyRecord, now: float) -> dict[str, Any]:
    """A key as lists and the admin API show it: no hash, no plaintext."""
    return {
        "key_id": key.key_id,
        "agent_id": key.agent_id,
        "alias": key.alias,
        "source": key.source,
        "status": key_status(key, now),
        "created": key.created,
        "expires": key.expires,
        "last_used": key.last_used,
        "revoked": key.revoked,
        "grace_until": key.grace_until,
    }


def agent_view(agent: AgentRecord) -> dict[str, Any]:
    return {
        "id": agent.agent_id,
        "team": agent.team,
        "project": agent.project,
        "tags": agent.tags,
        "models": agent.models,
        "limits": agent.limits,
        "source": agent.source,
        "created": agent.created,
    }


class KeyAdmin:
    def __init__(
        self, store: KeyStore, hasher: Hasher, *, grace_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self._hasher = hasher
        self.grace_seconds = grace_seconds
        self.clock = clock

    async def agent(self, agent_id: str) -> AgentRecord:
        agent = await self.store.get_agent(agent_id)
        if agent is None:
            raise NotFound(f"No agent {agent_id!r}.", param="agent_id")
        return agent

    async def create_agent(self, agent: AgentRecord) -> AgentRecord:
        agent = replace(agent, created=self.clock())
        try:
            await self.store.create_agent(agent)
        except AgentExists:
            raise Conflict(f"Agent {agent.agent_id!r} already exists.", param="id") from None
        return agent

    async def update_agent(self, agent_id: str, changes: dict[str, Any]) -> AgentRecord:
        """Apply `changes` (AgentRecord field names); the agent becomes API-managed."""
        agent = replace(await self.agent(agent_id), **changes, source="api")
        await self.store.upsert_agent(agent)
        return agent

    async def delete_agent(self, agent_id: str) -> None:
        if not await self.store.delete_agent(agent_id, self.clock()):
            raise NotFound(f"No agent {agent_id!r}.", param="agent_id")

    async def key(self, key_id: str) -> KeyRecord:
        key = await self.store.get_key(key_id)
        if key is None:
            raise NotFound(f"No key {key_id!r}.", param="key_id")
        return key

    async def create_key(
        self, agent_id: str, alias: str | None = None, expires_in: float | None = None, source: str = "api"
    ) -> NewKey:
        await self.agent(agent_id)
        now = self.clock()
        plaintext = new_key()
        record = KeyRecord(
            key_id=new_key_id(),
            key_hash=self._hasher.hash(plaintext),
            agent_id=agent_id,
            alias=alias or f"{agent_id}-{now:.0f}",
            source="config" if source == "config" else "api",
            created=now,
            expires=now + expires_in if expires_in is not None else None,
        )
        await self.store.add_key(record)
        return NewKey(record, plaintext)

    async def rotate_key(self, key_id: str, grace_seconds: float | None = None) -> NewKey:
        """A new key for the same agent and alias; the old one works for the grace period."""
        old = await self.key(key_id)
        now = self.clock()
        if not old.valid_at(now):
            raise Conflict(f"Key {key_id!r} is {key_status(old, now)}; only a working key can be rotated.")
        plaintext = new_key()
        lifetime = old.expires - old.created if old.expires is not None else None
        record = replace(
            old,
            key_id=new_key_id(),
            key_hash=self._hasher.hash(plaintext),
            created=now,
            expires=now + lifetime if lifetime is not None else None,
            last_used=None,
            grace_until=None,
        )
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        if not await self.store.rotate_key(key_id, record, now + grace):
            raise Conflict(f"Key {key_id!r} was revoked meanwhile.")
        return NewKey(record, plaintext)

    async def revoke_key(self, key_id: str) -> KeyRecord:
        await self.key(key_id)
        await self.store.revoke_key(key_id, self.clock())
        return await self.key(key_id)
