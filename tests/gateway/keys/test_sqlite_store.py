from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from gateway.keys.sqlite_store import SqliteKeyStore
from gateway.keys.store import KeyStoreError
from tests.gateway.keys.store_cases import BOT, CASES, Case, key


async def _run(case: Case, path: Path) -> None:
    store = SqliteKeyStore(path)
    await store.open()
    try:
        await case(store)
    finally:
        await store.close()


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_store_contract(case: Case, tmp_path: Path) -> None:
    asyncio.run(_run(case, tmp_path / "keys.sqlite"))


def test_data_survives_reopen_and_is_shared_by_two_connections(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "keys.sqlite"

    async def scenario() -> None:
        first, second = SqliteKeyStore(path), SqliteKeyStore(path)
        await first.open()
        await second.open()
        await first.create_agent(BOT)
        await first.add_key(key("k1"))
        assert await second.revoke_key("k1", 5.0) is True
        assert (await first.snapshot()).keys == []
        await first.close()
        await second.close()
        third = SqliteKeyStore(path)
        await third.open()
        assert await third.get_agent("bot") == BOT
        assert await third.get_key("k1") == key("k1", revoked=5.0)
        await third.close()

    asyncio.run(scenario())
    assert not stat.S_IMODE(path.stat().st_mode) & stat.S_IWOTH


def test_unopened_or_unusable_store_raises_key_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async def scenario() -> None:
        with pytest.raises(KeyStoreError, match="not open"):
            await SqliteKeyStore(tmp_path / "k.sqlite").list_agents()
        with pytest.raises(KeyStoreError, match="cannot open the key store"):
            await SqliteKeyStore(blocker / "keys.sqlite").open()

    asyncio.run(scenario())
