"""KeyDirectory over a real SQLite store, with a fake clock for expiry and rotation grace."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gateway.auth import AgentIdentity
from gateway.errors import GatewayNotReady, InvalidApiKey
from gateway.keys.admin import KeyAdmin
from gateway.keys.directory import KeyDirectory
from gateway.keys.hashing import KeyHasher
from gateway.keys.sqlite_store import SqliteKeyStore
from gateway.keys.store import AgentRecord
from gateway.keys.tokens import TokenIssuer
from meterline.config import Limits
from tests.gateway.keys.test_tokens import Clock

MASTER = "sk-master-0123456789"
BOT = AgentRecord("bot", "support", "helpdesk", {"cc": "1"}, ["demo"], {"rpm": 60, "usd_per_day": 2.0})

Scenario = Callable[[KeyDirectory, KeyAdmin, Clock, TokenIssuer], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, refresh_seconds: float = 60.0) -> None:
    async def main() -> None:
        clock = Clock()
        store = SqliteKeyStore(tmp_path / "keys.sqlite")
        await store.open()
        hasher = KeyHasher(b"h" * 32)
        admin = KeyAdmin(store, hasher, grace_seconds=3600, clock=clock)
        tokens = TokenIssuer(b"t" * 43, clock)
        directory = KeyDirectory(master_key=MASTER, refresh_seconds=refresh_seconds, clock=clock)
        await admin.create_agent(BOT)
        await directory.start(store, hasher, tokens)
        try:
            await scenario(directory, admin, clock, tokens)
        finally:
            await directory.close()
            await store.close()

    asyncio.run(main())


def bearer(key: str) -> str:
    return f"Bearer {key}"


def test_key_authenticates_as_its_agent_with_limits(tmp_path: Path) -> None:
    async def scenario(directory: KeyDirectory, admin: KeyAdmin, clock: Clock, tokens: TokenIssuer) -> None:
        new = await admin.create_key("bot", alias="bot-main")
        await directory.refresh()
        assert directory.authenticate(bearer(new.key)) == AgentIdentity(
            agent_id="bot",
            team="support",
            project="helpdesk",
            key_alias="bot-main",
            tags={"cc": "1"},
            models=frozenset({"demo"}),
            limits=Limits(rpm=60, usd_per_day=2.0),
        )
        assert directory.authenticate(f"bearer   {new.key}  ").agent_id == "bot"
        assert directory.lookup(MASTER) == AgentIdentity(agent_id="master", team="admin", key_alias="master-key")
        assert len(directory) == 2

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing API key. Send it as 'Authorization: Bearer <agent key>'."),
        ("", "Missing API key. Send it as 'Authorization: Bearer <agent key>'."),
        ("Basic abc", "Malformed Authorization header. Expected 'Bearer <agent key>'."),
        ("Bearer ", "Malformed Authorization header. Expected 'Bearer <agent key>'."),
        ("Bearer ml-unknown", "Incorrect, expired or revoked API key provided."),
    ],
)
def test_bad_headers_get_401_invalid_api_key(tmp_path: Path, header: str | None, message: str) -> None:
    async def scenario(directory: KeyDirectory, admin: KeyAdmin, clock: Clock, tokens: TokenIssuer) -> None:
        with pytest.raises(InvalidApiKey) as error:
            directory.authenticate(header)
        assert (error.value.status_code, error.value.code, error.value.message) == (401, "invalid_api_key", message)

    run(tmp_path, scenario)


def test_expiry_rotation_grace_and_revoke(tmp_path: Path) -> None:
    async def scenario(directory: KeyDirectory, admin: KeyAdmin, clock: Clock, tokens: TokenIssuer) -> None:
        expiring = await admin.create_key("bot", expires_in=30)
        old = await admin.create_key("bot")
        await directory.refresh()
        rotated = await admin.rotate_key(old.record.key_id, grace_seconds=10)
        await directory.refresh()
        assert directory.lookup(old.key) is not None and directory.lookup(rotated.key) is not None
        clock.now += 10  # grace over: no refresh needed, the directory checks the end itself
        assert directory.lookup(old.key) is None
        assert directory.lookup(rotated.key) is not None
        assert directory.lookup(expiring.key) is not None
        clock.now += 20
        assert directory.lookup(expiring.key) is None
        await admin.revoke_key(rotated.record.key_id)
        assert directory.lookup(rotated.key) is not None  # until the next refresh
        await directory.refresh()
        assert directory.lookup(rotated.key) is None
        await admin.delete_agent("bot")
        await directory.refresh()
        assert len(directory) == 1  # only the master key

    run(tmp_path, scenario)


def test_tokens_follow_their_key(tmp_path: Path) -> None:
    async def scenario(directory: KeyDirectory, admin: KeyAdmin, clock: Clock, tokens: TokenIssuer) -> None:
        new = await admin.create_key("bot")
        await directory.refresh()
        token = tokens.issue("bot", new.record.key_id, expires_in=100).token
        assert directory.authenticate(bearer(token)).agent_id == "bot"
        assert directory.lookup(tokens.issue("bot", "key_unknown").token) is None
        assert directory.lookup(TokenIssuer(b"f" * 43, clock).issue("bot", new.record.key_id).token) is None
        clock.now += 100
        assert directory.lookup(token) is None  # expired (even though verified before)
        fresh = tokens.issue("bot", new.record.key_id).token
        assert directory.lookup(fresh) is not None
        await admin.revoke_key(new.record.key_id)
        await directory.refresh()
        assert directory.lookup(fresh) is None

    run(tmp_path, scenario)


def test_last_used_is_written_in_a_batch_at_refresh(tmp_path: Path) -> None:
    async def scenario(directory: KeyDirectory, admin: KeyAdmin, clock: Clock, tokens: TokenIssuer) -> None:
        new = await admin.create_key("bot")
        await directory.refresh()
        directory.lookup(new.key)
        clock.now += 5
        directory.lookup(new.key)
        assert (await admin.key(new.record.key_id)).last_used is None
        await directory.refresh()
        assert (await admin.key(new.record.key_id)).last_used == clock.now

    run(tmp_path, scenario)


def test_background_refresh_picks_up_changes(tmp_path: Path) -> None:
    async def scenario(directory: KeyDirectory, admin: KeyAdmin, clock: Clock, tokens: TokenIssuer) -> None:
        new = await admin.create_key("bot")
        for _ in range(500):  # the refresh task runs every 10 ms; wait for it without a timing assertion
            if directory.lookup(new.key) is not None:
                break
            await asyncio.sleep(0.01)
        assert directory.lookup(new.key) is not None

    run(tmp_path, scenario, refresh_seconds=0.01)


def test_not_loaded_directory_answers_503() -> None:
    with pytest.raises(GatewayNotReady):
        KeyDirectory(master_key=None).authenticate("Bearer ml-x")
