"""The KeyStore contract against the machine's PostgreSQL, one fresh schema per test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway.keys.postgres_store import PostgresKeyStore, redacted
from gateway.keys.store import AgentRecord, KeyStoreError
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
