"""The KeyStore contract against the machine's PostgreSQL, one fresh schema per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from gateway.keys.postgres_store import PostgresKeyStore, redacted
from gateway.keys.store import AgentRecord, KeyStoreError
from meterline.secrets import SecretRegistry
from tests.conftest import POSTGRES_URL
from tests.gateway.keys.pg import fresh_schema
from tests.gateway.keys.store_cases import CASES, Case


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


async def _run(case: Case, url: str) -> None:
    store = PostgresKeyStore(url)
    await store.open()
    try:
        await case(store)
    finally:
        await store.close()


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_store_contract(case: Case, pg_schema_url: str) -> None:
    asyncio.run(_run(case, pg_schema_url))


def test_replicas_open_together_and_share_one_schema(pg_schema_url: str) -> None:
    async def scenario() -> None:
        stores = [PostgresKeyStore(pg_schema_url) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))  # schema creation under an advisory lock
        await asyncio.gather(*(s.upsert_agent(AgentRecord("bot", f"team-{i}")) for i, s in enumerate(stores)))
        teams = {(await s.get_agent("bot") or AgentRecord("x", "x")).team for s in stores}
        assert len(teams) == 1
        await asyncio.gather(*(s.close() for s in stores))

    asyncio.run(scenario())


def test_unreachable_database_is_a_key_store_error_without_the_password() -> None:
    url = "postgresql://meterline:s3cret-pw@127.0.0.1:1/keys?connect_timeout=1"
    assert redacted(url) == "postgresql://meterline:***@127.0.0.1:1/keys?connect_timeout=1"

    async def scenario() -> None:
        store = PostgresKeyStore(url, open_timeout=1.0)
        assert "s3cret-pw" not in repr(store)
        with pytest.raises(KeyStoreError) as error:
            await store.open()
        assert "s3cret-pw" not in str(error.value)
        assert "127.0.0.1:1" in str(error.value)

    asyncio.run(scenario())


def test_a_rotated_url_reconnects_while_work_in_flight_finishes(pg_schema_url: str, tmp_path: Path) -> None:
    """database_url as a file:// secret: the rotated URL (here a new application_name, standing
    for new credentials) serves new work; a write blocked when it rotates completes."""
    tag = f"mlt-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "database_url"
    path.write_text(f"{pg_schema_url}&application_name={tag}-v1\n")
    schema = parse_qs(urlsplit(pg_schema_url).query)["options"][0].removeprefix("-csearch_path=")

    def connected() -> set[str]:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s", (f"{tag}-%",)
            ).fetchall()
        return {row[0].removeprefix(f"{tag}-") for row in rows}

    async def eventually(expected: set[str]) -> None:
        for _ in range(500):
            if await asyncio.to_thread(connected) == expected:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"connections {connected()} never became {expected}")

    async def scenario() -> list[str]:
        secret = SecretRegistry().live(f"file://{path}")
        store = PostgresKeyStore(secret)
        await store.open()
        try:
            await store.upsert_agent(AgentRecord("before", "t"))
            assert await asyncio.to_thread(connected) == {"v1"}
            with psycopg.connect(POSTGRES_URL) as locker:
                locker.execute(f"LOCK TABLE {schema}.meterline_agents IN ACCESS EXCLUSIVE MODE")
                in_flight = asyncio.create_task(store.upsert_agent(AgentRecord("in-flight", "t")))
                await asyncio.sleep(0.2)
                path.write_text(f"{pg_schema_url}&application_name={tag}-v2\n")
                os.utime(path, ns=(2_000_000_000 * 10**9, 2_000_000_000 * 10**9))
                assert (await secret.refresh_now()).value.endswith("-v2")
                await eventually({"v1", "v2"})  # the new pool is up; the blocked write holds its v1 connection
                assert not in_flight.done()
                locker.rollback()
            await in_flight
            await eventually({"v2"})
            await store.upsert_agent(AgentRecord("after", "t"))
            return [a.agent_id for a in await store.list_agents()]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == ["after", "before", "in-flight"]
