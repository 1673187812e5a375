"""The SQL both key-store backends run: one schema, idempotent upserts, one transaction per call.

Statements use `?` placeholders (SQLite's); the PostgreSQL backend rewrites them. The calls run
in a worker thread so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from gateway.keys.store import AgentExists, AgentRecord, KeyRecord, Snapshot, UnknownAgent

T = TypeVar("T")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS meterline_agents (
        agent_id TEXT PRIMARY KEY,
        team TEXT NOT NULL,
        project TEXT,
        tags TEXT NOT NULL,
        models TEXT,
        limits TEXT NOT NULL,
        source TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS meterline_keys (
        key_id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        agent_id TEXT NOT NULL,
        alias TEXT,
        source TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION,
        last_used DOUBLE PRECISION,
        revoked DOUBLE PRECISION,
        grace_until DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS meterline_keys_agent ON meterline_keys (agent_id)",
    # A key's hash under a newer hashing secret, written when the key was seen during a rotation.
    """CREATE TABLE IF NOT EXISTS meterline_key_hashes (
        key_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meterline_key_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO meterline_key_meta (name, value) VALUES ('version', 0) ON CONFLICT DO NOTHING",
)
# Every change to agents or keys (not last-used times) bumps the version in its transaction, so
# a directory refresh with nothing new costs one single-row read.
BUMP = "UPDATE meterline_key_meta SET value = value + 1 WHERE name = 'version'"
VERSION = "SELECT value FROM meterline_key_meta WHERE name = 'version'"

AGENT_COLUMNS = "agent_id, team, project, tags, models, limits, source, created"
KEY_COLUMNS = "key_id, key_hash, agent_id, alias, source, created, expires, last_used, revoked, grace_until"
UPSERT_AGENT = (
    f"INSERT INTO meterline_agents ({AGENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (agent_id) DO UPDATE SET team = excluded.team, project = excluded.project, "
    "tags = excluded.tags, models = excluded.models, limits = excluded.limits, source = excluded.source"
)
INSERT_AGENT = f"INSERT INTO meterline_agents ({AGENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
INSERT_KEY = f"INSERT INTO meterline_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
END_GRACE = (
    "UPDATE meterline_keys SET grace_until = CASE WHEN grace_until IS NOT NULL AND grace_until < ? "
    "THEN grace_until ELSE ? END WHERE key_id = ? AND revoked IS NULL"
)
INSERT_HASH = "INSERT INTO meterline_key_hashes (key_hash, key_id, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
TOUCH = "UPDATE meterline_keys SET last_used = ? WHERE key_id = ? AND (last_used IS NULL OR last_used < ?)"


class Tx(Protocol):
    """One open transaction of a backend."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def _agent_row(agent: AgentRecord) -> tuple[Any, ...]:
    models = json.dumps(agent.models) if agent.models is not None else None
    tags = json.dumps(agent.tags, sort_keys=True)
    limits = json.dumps(agent.limits, sort_keys=True)
    return (agent.agent_id, agent.team, agent.project, tags, models, limits, agent.source, agent.created)


def _agent(row: Sequence[Any]) -> AgentRecord:
    agent_id, team, project, tags, models, limits, source, created = row
    return AgentRecord(
        agent_id=agent_id,
        team=team,
        project=project,
        tags=json.loads(tags),
        models=json.loads(models) if models is not None else None,
        limits=json.loads(limits),
        source=source,
        created=float(created),
    )


def _key_row(key: KeyRecord) -> tuple[Any, ...]:
    return (
        key.key_id, key.key_hash, key.agent_id, key.alias, key.source, key.created,
        key.expires, key.last_used, key.revoked, key.grace_until,
    )  # fmt: skip


def _key(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(*row)


class SqlKeyStore(ABC):
    """The KeyStore methods, written once over a backend's transactions."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Tx]:
        """A transaction that commits on success and rolls back on error; backend errors
        become KeyStoreError."""

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    def _create_schema(self, tx: Tx) -> None:
        for statement in SCHEMA:
            tx.execute(statement)

    async def _run(self, work: Callable[[Tx], T]) -> T:
        def in_transaction() -> T:
            with self._transaction() as tx:
                return work(tx)

        return await asyncio.to_thread(in_transaction)

    async def open(self) -> None:
        await asyncio.to_thread(self._open)
        await self._run(self._create_schema)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    async def snapshot(self) -> Snapshot:
        def read(tx: Tx) -> Snapshot:
            agents = [_agent(r) for r in tx.fetch(f"SELECT {AGENT_COLUMNS} FROM meterline_agents")]
            keys = tx.fetch(f"SELECT {KEY_COLUMNS} FROM meterline_keys WHERE revoked IS NULL")
            extra = {str(h): str(k) for h, k in tx.fetch("SELECT key_hash, key_id FROM meterline_key_hashes")}
            [(version,)] = tx.fetch(VERSION)
            return Snapshot({a.agent_id: a for a in agents}, [_key(r) for r in keys], int(version), extra)

        return await self._run(read)

    async def version(self) -> int:
        rows = await self._run(lambda tx: tx.fetch(VERSION))
        return int(rows[0][0])

    def _changed(self, tx: Tx, rowcount: int) -> int:
        if rowcount:
            tx.execute(BUMP)
        return rowcount

    async def list_agents(self) -> list[AgentRecord]:
        rows = await self._run(lambda tx: tx.fetch(f"SELECT {AGENT_COLUMNS} FROM meterline_agents ORDER BY agent_id"))
        return [_agent(r) for r in rows]

    async def get_agent(self, agent_id: str) -> AgentRecord | None:
        rows = await self._run(
            lambda tx: tx.fetch(f"SELECT {AGENT_COLUMNS} FROM meterline_agents WHERE agent_id = ?", (agent_id,))
        )
        return _agent(rows[0]) if rows else None

    async def create_agent(self, agent: AgentRecord) -> None:
        if not await self._run(lambda tx: self._changed(tx, tx.execute(INSERT_AGENT, _agent_row(agent)))):
            raise AgentExists(agent.agent_id)

    async def upsert_agent(self, agent: AgentRecord) -> None:
        await self._run(lambda tx: self._changed(tx, tx.execute(UPSERT_AGENT, _agent_row(agent))))

    async def delete_agent(self, agent_id: str, now: float) -> bool:
        def delete(tx: Tx) -> bool:
            tx.execute("UPDATE meterline_keys SET revoked = ? WHERE agent_id = ? AND revoked IS NULL", (now, agent_id))
            return self._changed(tx, tx.execute("DELETE FROM meterline_agents WHERE agent_id = ?", (agent_id,))) > 0

        return await self._run(delete)

    async def add_key(self, key: KeyRecord) -> bool:
        def add(tx: Tx) -> bool:
            if not tx.fetch("SELECT 1 FROM meterline_agents WHERE agent_id = ?", (key.agent_id,)):
                raise UnknownAgent(key.agent_id)
            return self._changed(tx, tx.execute(INSERT_KEY, _key_row(key))) > 0

        return await self._run(add)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        rows = await self._run(
            lambda tx: tx.fetch(f"SELECT {KEY_COLUMNS} FROM meterline_keys WHERE key_id = ?", (key_id,))
        )
        return _key(rows[0]) if rows else None

    async def list_keys(self, agent_id: str | None = None) -> list[KeyRecord]:
        select = f"SELECT {KEY_COLUMNS} FROM meterline_keys"
        if agent_id is None:
            rows = await self._run(lambda tx: tx.fetch(f"{select} ORDER BY agent_id, created, key_id"))
        else:
            rows = await self._run(
                lambda tx: tx.fetch(f"{select} WHERE agent_id = ? ORDER BY created, key_id", (agent_id,))
            )
        return [_key(r) for r in rows]

    async def revoke_key(self, key_id: str, now: float) -> bool:
        sql = "UPDATE meterline_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL"
        return await self._run(lambda tx: self._changed(tx, tx.execute(sql, (now, key_id))) > 0)

    async def rotate_key(self, old_key_id: str, new_key: KeyRecord, grace_until: float) -> bool:
        def rotate(tx: Tx) -> bool:
            if not self._changed(tx, tx.execute(END_GRACE, (grace_until, grace_until, old_key_id))):
                return False
            return tx.execute(INSERT_KEY, _key_row(new_key)) > 0

        return await self._run(rotate)

    async def reinstate_key(self, key_id: str) -> bool:
        sql = "UPDATE meterline_keys SET grace_until = NULL, expires = NULL WHERE key_id = ? AND revoked IS NULL"
        return await self._run(lambda tx: self._changed(tx, tx.execute(sql, (key_id,))) > 0)

    async def add_key_hashes(self, hashes: dict[str, str], now: float) -> None:
        def add(tx: Tx) -> None:
            self._changed(tx, sum(tx.execute(INSERT_HASH, (h, key_id, now)) for key_id, h in sorted(hashes.items())))

        if hashes:
            await self._run(add)

    async def touch_last_used(self, used: dict[str, float]) -> None:
        if used:
            rows = [(at, key_id, at) for key_id, at in sorted(used.items())]
            await self._run(lambda tx: tx.executemany(TOUCH, rows))
