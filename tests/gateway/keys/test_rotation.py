"""Rotating the master key, the key-hashing secret and the JWT signing key while the gateway runs.

The three are file:// references refreshed in the background; the test rewrites the files (a
real rotation) and judges grace periods by a fake clock. What must hold (docs/secrets.md):
the previous master key works for the grace, then not; keys stored under the previous hashing
secret keep working, and every key used during the grace (and every pre-issued config key)
keeps working after it, on this gateway and on one started afresh; tokens signed with the
previous signing key still verify; new tokens are signed with the new key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import openai
import pytest

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from meterline.config import MeterlineConfig, parse_config
from meterline.defaults import DEFAULT_CONFIG_YAML
from meterline.secrets import SecretRegistry
from tests.gateway.keys.test_tokens import Clock
from tests.servers import serve_in_thread

PREISSUED = "preissued-key-rotation-test"
GRACE = 600
OLD = {
    "master": "sk-master-old-0123456789",
    "hash": "hash-secret-old-0123456789",
    "jwt": "jwt-old-" + "0" * 32,
    "agent": "research-agent-key-old-0001",
}
NEW = {
    "master": "sk-master-new-9876543210",
    "hash": "hash-secret-new-9876543210",
    "jwt": "jwt-new-" + "9" * 32,
    "agent": "research-agent-key-new-0002",
}
_mtime = iter(range(1_800_000_000, 1_900_000_000, 10))


def write(path: Path, value: str) -> None:
    """A new version of a mounted secret (a distinct mtime, which is the file backend's version)."""
    path.write_text(value + "\n")
    stamp = next(_mtime) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def references(secrets_dir: Path, refresh: float) -> dict[str, str]:
    return {name: f"file://{secrets_dir / name}?refresh={refresh}" for name in OLD}


def config(data_dir: Path, secrets_dir: Path, refresh: float = 0.05) -> MeterlineConfig:
    refs = references(secrets_dir, refresh)
    text = DEFAULT_CONFIG_YAML.replace("storage:\n  data_dir: ./data", f"storage:\n  data_dir: {data_dir}")
    text = text.replace("key: demo-key-support-bot", f"key: {PREISSUED}")
    text = text.replace("key: demo-key-research-agent", f"key: {refs['agent']}")
    text += f"""general_settings:
  master_key: {refs["master"]}
key_store:
  hash_secret: {refs["hash"]}
  jwt_signing_key: {refs["jwt"]}
  refresh_seconds: 0.05
  rotation_grace_seconds: {GRACE}
"""
    return parse_config(text, "test", environ={})


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@dataclass
class Gateway:
    url: str
    http: httpx.Client
    registry: SecretRegistry

    def admin(self, method: str, path: str, key: str, json: Any = None) -> httpx.Response:
        return self.http.request(method, path, json=json, headers={"Authorization": f"Bearer {key}"})

    def chat(self, key: str) -> int:
        with openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0) as client:
            try:
                client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}])
            except openai.APIStatusError as exc:
                return exc.status_code
        return 200

    def token(self, key: str) -> str:
        response = self.http.post("/v1/auth/token", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def versions(self) -> set[str | None]:
        return {s.version for s in self.registry.status()}


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mounted"
    directory.mkdir()
    for name, value in OLD.items():
        write(directory / name, value)
    return directory


@contextmanager
def serve(data_dir: Path, secrets_dir: Path, clock: Clock, refresh: float = 0.05) -> Iterator[Gateway]:
    app = create_app(config(data_dir, secrets_dir, refresh), sink=InMemorySink(), clock=clock)
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
        yield Gateway(url, http, app.state.secrets)


def test_rotation_locks_out_only_what_the_grace_says(tmp_path: Path, secrets_dir: Path) -> None:
    clock = Clock(time.time())
    with serve(tmp_path / "data", secrets_dir, clock) as gateway:
        fresh, used, idle = rotate_under(gateway, secrets_dir, clock)
    # A gateway started afresh knows only the new secrets and agrees.
    with serve(tmp_path / "data", secrets_dir, clock) as gateway:
        keys = (used, PREISSUED, fresh, NEW["agent"], idle, OLD["agent"])
        assert [gateway.chat(k) for k in keys] == [200, 200, 200, 200, 401, 401]
        assert gateway.admin("GET", "/admin/agents", OLD["master"]).status_code == 401


def rotate_under(gateway: Gateway, secrets_dir: Path, clock: Clock) -> tuple[str, str, str]:
    """Rotate all three while `gateway` runs; the keys (fresh, used, idle) for the restart."""
    used = gateway.admin("POST", "/admin/keys", OLD["master"], {"agent_id": "research-agent"}).json()["key"]
    idle = gateway.admin("POST", "/admin/keys", OLD["master"], {"agent_id": "research-agent"}).json()["key"]
    old_token = gateway.token(used)
    before = gateway.versions()

    for name, value in NEW.items():
        write(secrets_dir / name, value)
    wait_for(lambda: gateway.versions().isdisjoint(before), "the three secrets to be refreshed")

    # Within the grace: everything issued before the rotation still works.
    assert gateway.admin("GET", "/admin/agents", OLD["master"]).status_code == 200
    assert gateway.admin("GET", "/admin/agents", NEW["master"]).status_code == 200
    assert gateway.chat(used) == 200
    assert gateway.chat(PREISSUED) == 200
    assert gateway.chat(old_token) == 200
    wait_for(lambda: gateway.chat(NEW["agent"]) == 200, "the rotated pre-issued key to be stored")
    assert gateway.chat(OLD["agent"]) == 200
    new_token = gateway.token(used)
    assert jwt.decode(new_token, NEW["jwt"], algorithms=["HS256"])["sub"] == "research-agent"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(new_token, OLD["jwt"], algorithms=["HS256"])
    fresh = gateway.admin("POST", "/admin/keys", NEW["master"], {"agent_id": "support-bot"}).json()["key"]
    assert gateway.chat(fresh) == 200

    # After the grace: the old master key is refused; keys seen during the grace were stored
    # again under the new secret (a background write: wait for it), the idle one was not.
    clock.now += GRACE + 1
    assert gateway.admin("GET", "/admin/agents", OLD["master"]).status_code == 401
    assert gateway.admin("GET", "/admin/agents", NEW["master"]).status_code == 200
    wait_for(lambda: gateway.chat(used) == 200, "the used key to work under the new hash secret")
    assert gateway.chat(PREISSUED) == 200
    assert gateway.chat(fresh) == 200
    assert gateway.chat(new_token) == 200
    assert gateway.chat(NEW["agent"]) == 200
    assert gateway.chat(idle) == 401
    assert gateway.chat(OLD["agent"]) == 401
    return fresh, used, idle


def test_a_master_key_rotated_before_the_refresh_works_at_the_second_try(tmp_path: Path, secrets_dir: Path) -> None:
    """Rotated in the backend and used at once: the miss starts a refresh (at most one per 10 s),
    so the operator's retry is let in without waiting for the hour-long refresh interval."""
    clock = Clock(time.time())
    with serve(tmp_path / "data", secrets_dir, clock, refresh=3600) as gateway:
        write(secrets_dir / "master", NEW["master"])
        assert gateway.admin("GET", "/admin/agents", NEW["master"]).status_code == 401
        wait_for(lambda: gateway.admin("GET", "/admin/agents", NEW["master"]).status_code == 200, "the new key")
        assert gateway.admin("GET", "/admin/agents", OLD["master"]).status_code == 200  # in its grace
        assert gateway.registry.live(references(secrets_dir, 3600)["master"]).refreshes == 1
