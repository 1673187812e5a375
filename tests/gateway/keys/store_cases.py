"""The KeyStore contract, run against every backend (test_sqlite_store, test_postgres_store)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.keys.store import AgentExists, AgentRecord, KeyRecord, KeyStore, UnknownAgent

Case = Callable[[KeyStore], Awaitable[None]]

BOT = AgentRecord(
    "bot", "support", "helpdesk", {"cost_center": "cc-1"}, ["demo"], {"rpm": 60, "usd_per_day": 2.5}, "api", 100.0
)


def key(key_id: str, agent_id: str = "bot", key_hash: str | None = None, **fields: float | None) -> KeyRecord:
    return KeyRecord(key_id, key_hash or f"hash-{key_id}", agent_id, f"alias-{key_id}", "api", 100.0, **fields)


async def agents_round_trip(store: KeyStore) -> None:
    await store.create_agent(BOT)
    with pytest.raises(AgentExists):
        await store.create_agent(BOT)
    assert await store.get_agent("bot") == BOT
    assert await store.get_agent("nobody") is None
    changed = AgentRecord("bot", "research", None, {}, None, {}, "config", 999.0)
    await store.upsert_agent(changed)
    assert await store.get_agent("bot") == AgentRecord("bot", "research", None, {}, None, {}, "config", 100.0)
    await store.upsert_agent(AgentRecord("another", "t", created=5.0))
    assert [a.agent_id for a in await store.list_agents()] == ["another", "bot"]


async def keys_and_snapshot(store: KeyStore) -> None:
    await store.create_agent(BOT)
    with pytest.raises(UnknownAgent):
        await store.add_key(key("k0", agent_id="nobody"))
    assert await store.add_key(key("k1", expires=500.0)) is True
    assert await store.add_key(key("k2")) is True
    assert await store.add_key(key("k3", key_hash="hash-k1")) is False  # same hash: no second row
    assert await store.revoke_key("k2", 200.0) is True
    assert await store.revoke_key("k2", 300.0) is False
    snapshot = await store.snapshot()
    assert snapshot.agents == {"bot": BOT}
    assert snapshot.keys == [key("k1", expires=500.0)]
    assert await store.get_key("k2") == key("k2", revoked=200.0)
    assert [k.key_id for k in await store.list_keys("bot")] == ["k1", "k2"]
    assert await store.list_keys("nobody") == []


async def rotation(store: KeyStore) -> None:
    await store.create_agent(BOT)
    await store.add_key(key("old"))
    assert await store.rotate_key("old", key("new"), grace_until=1000.0) is True
    assert (await store.get_key("old")) == key("old", grace_until=1000.0)
    assert (await store.get_key("new")) == key("new")
    # a later, longer grace never extends an earlier end
    assert await store.rotate_key("old", key("newer"), grace_until=5000.0) is True
    assert (await store.get_key("old")) == key("old", grace_until=1000.0)
    await store.revoke_key("new", 1.0)
    assert await store.rotate_key("new", key("never"), grace_until=1.0) is False
    assert await store.rotate_key("missing", key("never2"), grace_until=1.0) is False
    assert await store.get_key("never") is None
    assert await store.reinstate_key("old") is True
    assert (await store.get_key("old")) == key("old")
    assert await store.reinstate_key("new") is False  # revoked stays revoked


async def delete_and_touch(store: KeyStore) -> None:
    assert await store.version() == 0
    await store.create_agent(BOT)
    await store.add_key(key("a"))
    await store.add_key(key("b"))
    assert await store.add_key(key("c", key_hash="hash-a")) is False  # no change, no new version
    assert await store.version() == 3
    await store.touch_last_used({"a": 150.0, "b": 160.0, "unknown": 1.0})
    await store.touch_last_used({"a": 140.0})  # never backwards
    assert (await store.snapshot()).version == 3  # last-used times are not changes
    assert [(k.key_id, k.last_used) for k in await store.list_keys()] == [("a", 150.0), ("b", 160.0)]
    assert await store.delete_agent("bot", 170.0) is True
    assert await store.delete_agent("bot", 171.0) is False
    assert [(k.key_id, k.revoked) for k in await store.list_keys()] == [("a", 170.0), ("b", 170.0)]
    snapshot = await store.snapshot()
    assert (snapshot.agents, snapshot.keys) == ({}, [])


async def concurrent_upserts(store: KeyStore) -> None:
    records = [AgentRecord(f"agent-{i % 5}", "team", created=float(i)) for i in range(40)]
    await asyncio.gather(*(store.upsert_agent(r) for r in records))
    await asyncio.gather(*(store.add_key(key(f"k{i}", agent_id="agent-0", key_hash="same")) for i in range(10)))
    assert [a.agent_id for a in await store.list_agents()] == [f"agent-{i}" for i in range(5)]
    assert len(await store.list_keys("agent-0")) == 1


CASES: list[Case] = [agents_round_trip, keys_and_snapshot, rotation, delete_and_touch, concurrent_upserts]
