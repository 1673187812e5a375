"""`meterline keys ...` as a subprocess against the store a live gateway reads."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from gateway.app import create_app
from gateway.keys.hashing import KeyHasher
from gateway.keys.sqlite_store import SqliteKeyStore
from gateway.telemetry.sink import InMemorySink
from meterline.config import load_config
from tests.conftest import free_port
from tests.gateway.keys.test_tokens import Clock
from tests.servers import serve_in_thread

PREISSUED = "preissued-key-of-support-bot"
CONFIG = """
model_list:
  - model_name: demo
    litellm_params: {{model: openai/gpt-4o-mini, mock_response: hello}}
agents:
  - {{id: support-bot, team: support, key: {preissued}}}
  - {{id: minted-bot, team: {minted_team}}}
{extra}
key_store: {{refresh_seconds: 0.05}}
storage: {{data_dir: {data_dir}}}
"""
NEW_KEY = re.compile(r"ml-[A-Za-z0-9_-]{43}")


@dataclass
class Setup:
    config: Path
    data_dir: Path

    def write(self, minted_team: str = "ops", extra: str = "") -> None:
        text = CONFIG.format(preissued=PREISSUED, minted_team=minted_team, extra=extra, data_dir=self.data_dir)
        self.config.write_text(text)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
        command = [sys.executable, "-m", "meterline", "--config", str(self.config), "--data-dir", str(self.data_dir)]
        return subprocess.run(
            [*command, "keys", *args], capture_output=True, text=True, env={**base, **(env or {})}, timeout=60
        )


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    result = Setup(tmp_path / "meterline.yaml", tmp_path / "data")
    result.write()
    return result


@pytest.fixture
def gateway(setup: Setup) -> Iterator[tuple[Callable[[str], int], Clock]]:
    """A gateway on the same config and store; `status(key)` is a chat request's HTTP status."""
    clock = Clock(time.time())
    config, _ = load_config(setup.config)
    with serve_in_thread(create_app(config, sink=InMemorySink(), clock=clock)) as url, httpx.Client() as http:

        def status(key: str) -> int:
            body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"Authorization": f"Bearer {key}"}
            return http.post(f"{url}/v1/chat/completions", json=body, headers=headers).status_code

        yield status, clock


def eventually(check: Callable[[], bool]) -> bool:
    """The gateway refreshes every 50 ms; poll without asserting on time."""
    for _ in range(200):
        if check():
            return True
        time.sleep(0.05)
    return False


def the_key(output: str) -> str:
    [key] = NEW_KEY.findall(output)
    return str(key)


def test_create_rotate_revoke_expire_through_the_cli(setup: Setup, gateway: tuple[Callable[[str], int], Clock]) -> None:
    status, clock = gateway
    created = setup.cli("create", "--agent", "support-bot", "--alias", "cli-key")
    assert created.returncode == 0, created.stderr
    key = the_key(created.stdout)
    key_id = re.search(
        r"Created key (key_[0-9a-f]{16}) for agent support-bot \(alias cli-key, expires -\)", created.stdout
    )
    assert key_id is not None
    assert eventually(lambda: status(key) == 200)

    rotated = setup.cli("rotate", key_id.group(1), "--grace", "1h")
    assert rotated.returncode == 0, rotated.stderr
    new_key = the_key(rotated.stdout)
    assert eventually(lambda: status(new_key) == 200)
    assert status(key) == 200
    clock.now = time.time() + 3600  # the CLI stamped the grace end with the wall clock
    assert (status(key), status(new_key)) == (401, 200)

    new_id = re.search(r"New key (key_[0-9a-f]{16})", rotated.stdout)
    assert new_id is not None
    revoked = setup.cli("revoke", new_id.group(1))
    assert revoked.stdout == (
        f"Revoked key {new_id.group(1)} of agent support-bot; gateways refuse it within key_store.refresh_seconds.\n"
    )
    assert eventually(lambda: status(new_key) == 401)

    expiring = the_key(setup.cli("create", "--agent", "support-bot", "--expires-in", "2h").stdout)
    assert eventually(lambda: status(expiring) == 200)
    clock.now = time.time() + 7200
    assert status(expiring) == 401

    listed = setup.cli("list", "--agent", "support-bot")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["KEY_ID", "AGENT", "ALIAS", "SOURCE", "STATUS", "CREATED", "VALID_UNTIL", "LAST_USED"]
    statuses = sorted(line.split()[4] for line in lines[1:])
    assert statuses == ["active", "active", "revoked", "rotating"]  # by the CLI's own clock: not yet past grace
    everything = "".join(p.stdout + p.stderr for p in (listed, revoked)) + created.stderr + rotated.stderr
    assert not any(secret in everything for secret in (key, new_key, expiring, PREISSUED))


def test_apply_is_idempotent_and_revokes_agents_no_longer_declared(
    setup: Setup, gateway: tuple[Callable[[str], int], Clock]
) -> None:
    status, _ = gateway
    first = setup.cli("apply")
    assert first.returncode == 0, first.stderr
    # the gateway already upserted the declared agents and the pre-issued key at startup
    assert first.stdout.splitlines()[:4] == [
        "Plan: 1 change(s)",
        "ACTION  AGENT       DETAIL",
        "key     minted-bot  mint a key (the agent has none that works)",
        "Applied 1 change(s).",
    ]
    minted = the_key(first.stdout)
    assert eventually(lambda: status(minted) == 200)
    assert setup.cli("apply").stdout == "no changes: the key store matches the config\n"

    setup.write(minted_team="platform")
    dry = setup.cli("apply", "--dry-run")
    assert dry.stdout.splitlines()[1:] == [
        "ACTION  AGENT       DETAIL",
        "update  minted-bot  changes team",
        "dry run: nothing applied",
    ]
    assert setup.cli("apply").stdout.splitlines()[-1] == "Applied 1 change(s)."
    assert setup.cli("apply").stdout == "no changes: the key store matches the config\n"

    setup.config.write_text(setup.config.read_text().replace("  - {id: minted-bot, team: platform}\n", ""))
    removed = setup.cli("apply")
    assert removed.stdout.splitlines()[2] == (
        "revoke  minted-bot  no longer declared: remove it and revoke its 1 working key(s)"
    )
    assert eventually(lambda: status(minted) == 401)
    assert status(PREISSUED) == 200
    assert setup.cli("apply").stdout == "no changes: the key store matches the config\n"
    assert minted not in removed.stdout + removed.stderr + first.stderr


@pytest.fixture
def moto_endpoint() -> Iterator[dict[str, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    finally:
        server.stop()


def test_apply_writes_new_keys_to_secrets_manager_not_stdout(setup: Setup, moto_endpoint: dict[str, str]) -> None:
    setup.write(extra="  - {id: third-bot, team: ops}")
    applied = setup.cli("apply", "--write-keys-to", "aws-secretsmanager://meterline/agents/", env=moto_endpoint)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[-2:] == [
        "Stored the new key of minted-bot in aws-secretsmanager://meterline/agents/minted-bot",
        "Stored the new key of third-bot in aws-secretsmanager://meterline/agents/third-bot",
    ]
    client = boto3.client(
        "secretsmanager", endpoint_url=moto_endpoint["AWS_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    stored = {
        a: client.get_secret_value(SecretId=f"meterline/agents/{a}")["SecretString"]
        for a in ("minted-bot", "third-bot")
    }
    assert all(NEW_KEY.fullmatch(k) for k in stored.values())
    assert not any(k in applied.stdout + applied.stderr for k in stored.values())

    hasher = KeyHasher((setup.data_dir / "secrets" / "key-hash.secret").read_text().strip().encode())

    async def stored_hashes() -> dict[str, str]:
        store = SqliteKeyStore(setup.data_dir / "keys.sqlite")
        await store.open()
        try:
            return {k.agent_id: k.key_hash for k in await store.list_keys()}
        finally:
            await store.close()

    hashes = asyncio.run(stored_hashes())
    assert {a: hashes[a] for a in stored} == {a: hasher.hash(k) for a, k in stored.items()}
    assert setup.cli("apply", "--write-keys-to", "aws-secretsmanager://meterline/agents").stdout == (
        "no changes: the key store matches the config\n"
    )


def test_cli_errors_are_clear(setup: Setup) -> None:
    missing = setup.cli("revoke", "key_missing")
    assert (missing.returncode, missing.stderr.splitlines()[-1]) == (1, "meterline: error: No key 'key_missing'.")
    bad = setup.cli("create", "--agent", "support-bot", "--expires-in", "3 weeks")
    assert (bad.returncode, bad.stderr.splitlines()[-1]) == (
        2, "meterline: error: '3 weeks' is not a duration (examples: 45s, 15m, 1h, 30d)"
    )  # fmt: skip
    target = setup.cli("apply", "--write-keys-to", "s3://bucket")
    assert target.stderr.splitlines()[-1] == (
        "meterline: error: --write-keys-to must look like aws-secretsmanager://PREFIX, not 's3://bucket'"
    )
