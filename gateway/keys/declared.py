"""The config's `agents:` against the key store: a plan of changes, then applying it.

`meterline keys apply` runs the whole plan (create, update, key, revoke); a gateway at startup
runs only its create / update / pre-issued-key part, so declared agents work without the CLI.
Applying is idempotent: a second plan over the same config and store is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from gateway.keys.admin import KeyAdmin, NewKey
from gateway.keys.hashing import Hasher, new_key_id
from gateway.keys.store import AgentRecord, KeyRecord
from meterline.config import AgentConfig
from meterline.secret_refs import resolve

Action = Literal["create", "update", "key", "revoke"]
CONFIG_ALIAS = "{agent}-config"


@dataclass(frozen=True)
class Change:
    action: Action
    agent_id: str
    detail: str
    agent: AgentRecord | None = None
    """The declared agent (create, update)."""
    key_hash: str | None = None
    """The hash of a pre-issued key to store; None with `mint` set means mint a new key."""
    mint: bool = False
    reinstate_key_id: str | None = None
    """A pre-issued key declared again after it expired or was rotated out."""


def declared_record(agent: AgentConfig) -> AgentRecord:
    return AgentRecord(
        agent_id=agent.id,
        team=agent.team,
        project=agent.project,
        tags=dict(agent.tags),
        models=list(agent.models) if agent.models is not None else None,
        limits=agent.limits.model_dump(exclude_none=True),
        source="config",
    )


def _key_change(agent: AgentConfig, hasher: Hasher, agent_keys: list[KeyRecord], now: float,
                *, mint_missing: bool) -> Change | None:  # fmt: skip
    if agent.key is not None:
        key_hash = hasher.hash(resolve(agent.key))
        existing = next((k for k in agent_keys if k.key_hash == key_hash), None)
        if existing is None:
            return Change("key", agent.id, "store the pre-issued key (its hash only)", key_hash=key_hash)
        if existing.revoked is None and not existing.valid_at(now):
            detail = f"reinstate the pre-issued key {existing.key_id} (it had expired or been rotated out)"
            return Change("key", agent.id, detail, key_hash=key_hash, reinstate_key_id=existing.key_id)
        return None  # in place, or revoked on purpose: a revoke is not undone by the config
    if mint_missing and not any(k.valid_at(now) for k in agent_keys):
        return Change("key", agent.id, "mint a key (the agent has none that works)", mint=True)
    return None


def plan(
    declared: list[AgentConfig],
    stored_agents: list[AgentRecord],
    stored_keys: list[KeyRecord],
    hasher: Hasher,
    now: float,
    *,
    full: bool = True,
) -> list[Change]:
    """What it takes for the store to match the config. `full=False` (gateway startup) leaves
    out minting keys and revoking agents that are no longer declared."""
    stored = {a.agent_id: a for a in stored_agents}
    changes: list[Change] = []
    for agent in declared:
        record = declared_record(agent)
        current = stored.get(agent.id)
        if current is None:
            changes.append(Change("create", agent.id, f"team={agent.team}", agent=record))
        elif not current.same_settings(record):
            fields = [
                name
                for name in ("team", "project", "tags", "models", "limits", "source")
                if getattr(current, name) != getattr(record, name)
            ]
            changes.append(Change("update", agent.id, "changes " + ", ".join(fields), agent=record))
        agent_keys = [k for k in stored_keys if k.agent_id == agent.id]
        key_change = _key_change(agent, hasher, agent_keys, now, mint_missing=full)
        if key_change is not None:
            changes.append(key_change)
    if full:
        names = {a.id for a in declared}
        for current in stored_agents:
            if current.source == "config" and current.agent_id not in names:
                working = sum(1 for k in stored_keys if k.agent_id == current.agent_id and k.valid_at(now))
                detail = f"no longer declared: remove it and revoke its {working} working key(s)"
                changes.append(Change("revoke", current.agent_id, detail))
    return changes


async def apply(admin: KeyAdmin, changes: list[Change]) -> dict[str, NewKey]:
    """Carry out the plan; returns the minted keys by agent id (the only plaintext copies)."""
    minted: dict[str, NewKey] = {}
    store = admin.store
    for change in changes:
        now = admin.clock()
        if change.action in ("create", "update"):
            assert change.agent is not None
            current = await store.get_agent(change.agent_id)
            await store.upsert_agent(replace(change.agent, created=current.created if current else now))
        elif change.action == "revoke":
            await store.delete_agent(change.agent_id, now)
        elif change.mint:
            alias = CONFIG_ALIAS.format(agent=change.agent_id)
            minted[change.agent_id] = await admin.create_key(change.agent_id, alias, source="config")
        elif change.key_hash is not None:
            await _store_preissued(admin, change, now)
    return minted


async def _store_preissued(admin: KeyAdmin, change: Change, now: float) -> None:
    """Store (or reinstate) a pre-issued key; the agent's previous config key keeps working for
    the grace period."""
    store, agent_id = admin.store, change.agent_id
    assert change.key_hash is not None
    previous = [
        k
        for k in await store.list_keys(agent_id)
        if k.source == "config" and k.valid_at(now) and k.grace_until is None and k.key_hash != change.key_hash
    ]
    record = KeyRecord(new_key_id(), change.key_hash, agent_id, CONFIG_ALIAS.format(agent=agent_id), "config", now)
    if change.reinstate_key_id is not None:
        await store.reinstate_key(change.reinstate_key_id)
        record = await store.get_key(change.reinstate_key_id) or record
    elif not previous:
        await store.add_key(record)
    for old in previous:  # the first rotation inserts a new record; the others only end their key
        await store.rotate_key(old.key_id, record, now + admin.grace_seconds)
