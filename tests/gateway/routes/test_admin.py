"""The key lifecycle over HTTP: the admin API behind the master key, agent keys used with the
openai SDK, rotation grace and expiry judged by a fake clock, tokens, and no key in any output."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.app import create_app
from gateway.keys.tokens import TokenIssuer
from gateway.telemetry.sink import InMemorySink
from meterline.config import MeterlineConfig, parse_config
from meterline.defaults import DEFAULT_CONFIG_YAML
from tests.gateway.keys.pg import fresh_schema
from tests.gateway.keys.test_tokens import Clock
from tests.servers import serve_in_thread

MASTER = "sk-master-test-0123456789"
PREISSUED = "preissued-key-for-support-bot"
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def config(data_dir: Path, master: str | None = MASTER, extra: str = "") -> MeterlineConfig:
    text = DEFAULT_CONFIG_YAML.replace("storage:\n  data_dir: ./data", f"storage:\n  data_dir: {data_dir}")
    text = text.replace("key: demo-key-support-bot", f"key: {PREISSUED}")
    if master:
        text += f"general_settings:\n  master_key: {master}\n"
    return parse_config(text + extra, "test", environ={})


@dataclass
class Gateway:
    url: str
    http: httpx.Client
    sink: InMemorySink
    clock: Clock
    responses: list[str]

    def admin(self, method: str, path: str, json: Any = None, key: str = MASTER) -> httpx.Response:
        response = self.http.request(method, path, json=json, headers={"Authorization": f"Bearer {key}"})
        if not (response.is_success and "key" in response.json()):  # the one-time answer that shows a new key
            self.responses.append(response.text)
        return response

    def chat(self, key: str) -> int:
        with openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0) as client:
            try:
                client.chat.completions.create(model="demo", messages=MESSAGES)
            except openai.APIStatusError as exc:
                self.responses.append(exc.response.text)
                return exc.status_code
        return 200


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    clock = Clock(time.time())
    sink = InMemorySink()
    with (
        serve_in_thread(create_app(config(tmp_path), sink=sink, clock=clock)) as url,
        httpx.Client(base_url=url) as http,
    ):
        yield Gateway(url, http, sink, clock, [])


def assert_no_secret(gateway: Gateway, secrets: list[str], caplog: pytest.LogCaptureFixture) -> None:
    outputs = {
        "responses": "\n".join(gateway.responses),
        "gateway logs": "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("openai", "http"))),
        "records": repr(gateway.sink.records),
        "spans": repr(gateway.sink.spans),
    }
    assert gateway.responses and gateway.sink.records
    for secret in secrets:
        assert [name for name, text in outputs.items() if secret in text] == []


def test_agent_and_key_lifecycle(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = gateway.admin("POST", "/admin/agents", {"id": "etl", "team": "data", "limits": {"rpm": 10}})
    assert created.status_code == 201
    assert created.json() == {
        "id": "etl", "team": "data", "project": None, "tags": {}, "models": None, "limits": {"rpm": 10},
        "source": "api", "created": gateway.clock.now,
    }  # fmt: skip
    first = gateway.admin("POST", "/admin/keys", {"agent_id": "etl", "alias": "etl-main"})
    assert first.status_code == 201
    key = first.json()["key"]
    assert key.startswith("ml-")
    assert gateway.chat(key) == 200
    [record] = gateway.sink.records
    assert (record.agent_id, record.team, record.key_alias) == ("etl", "data", "etl-main")

    gateway.clock.now += 1
    rotated = gateway.admin("POST", f"/admin/keys/{first.json()['key_id']}/rotate", {"grace_seconds": 60})
    assert rotated.status_code == 200
    new_key = rotated.json()["key"]
    assert rotated.json()["previous_valid_until"] == gateway.clock.now + 60
    assert (gateway.chat(key), gateway.chat(new_key)) == (200, 200)
    gateway.clock.now += 60
    assert (gateway.chat(key), gateway.chat(new_key)) == (401, 200)

    listed = gateway.admin("GET", "/admin/keys?agent_id=etl").json()["data"]
    assert [(k["alias"], k["status"]) for k in listed] == [("etl-main", "rotated"), ("etl-main", "active")]
    assert all(set(k) == {"key_id", "agent_id", "alias", "source", "status", "created", "expires", "last_used",
                          "revoked", "grace_until"} for k in listed)  # fmt: skip
    revoked = gateway.admin("POST", f"/admin/keys/{rotated.json()['key_id']}/revoke")
    assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
    assert gateway.chat(new_key) == 401

    expiring = gateway.admin("POST", "/admin/keys", {"agent_id": "etl", "expires_in_seconds": 30}).json()["key"]
    assert gateway.chat(expiring) == 200
    gateway.clock.now += 30
    assert gateway.chat(expiring) == 401

    patched = gateway.admin("PATCH", "/admin/agents/etl", {"team": "platform", "models": ["demo"]})
    assert (patched.json()["team"], patched.json()["models"], patched.json()["limits"]) == (
        "platform",
        ["demo"],
        {"rpm": 10},
    )
    last = gateway.admin("POST", "/admin/keys", {"agent_id": "etl"}).json()["key"]
    assert gateway.chat(last) == 200
    assert gateway.sink.records[-1].team == "platform"
    assert gateway.admin("DELETE", "/admin/agents/etl").json() == {"id": "etl", "deleted": True}
    assert gateway.chat(last) == 401
    assert gateway.admin("GET", "/admin/agents/etl").status_code == 404
    assert_no_secret(gateway, [key, new_key, expiring, last], caplog)


def test_config_agents_are_in_the_store_with_their_pre_issued_key(gateway: Gateway, tmp_path: Path) -> None:
    agents = gateway.admin("GET", "/admin/agents").json()["data"]
    assert [(a["id"], a["source"]) for a in agents] == [("research-agent", "config"), ("support-bot", "config")]
    assert gateway.chat(PREISSUED) == 200
    assert gateway.chat(MASTER) == 200
    assert gateway.sink.records[-1].agent_id == "master"
    assert PREISSUED.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("keys.sqlite*"))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "param"),
    [
        ("POST", "/admin/agents", {"team": "x"}, 400, None, "id"),
        ("POST", "/admin/agents", {"id": "a", "team": "x", "colour": 1}, 400, None, "colour"),
        ("POST", "/admin/agents", {"id": "a", "team": "x", "limits": {"rpm": -1}}, 400, None, "limits.rpm"),
        ("POST", "/admin/agents", {"id": "support-bot", "team": "x"}, 409, "already_exists", "id"),
        ("GET", "/admin/agents/nobody", None, 404, "not_found", "agent_id"),
        ("PATCH", "/admin/agents/nobody", {"team": "x"}, 404, "not_found", "agent_id"),
        ("POST", "/admin/keys", {"agent_id": "nobody"}, 404, "not_found", "agent_id"),
        ("POST", "/admin/keys", {"agent_id": "support-bot", "expires_in_seconds": 0}, 400, None, "expires_in_seconds"),
        ("POST", "/admin/keys/key_0000000000000000/rotate", {}, 404, "not_found", "key_id"),
        ("POST", "/admin/keys/key_0000000000000000/revoke", None, 404, "not_found", "key_id"),
        # Fields are validated, never coerced, and never reach the store as a 5xx (issue 12).
        ("PATCH", "/admin/agents/support-bot", {"team": None}, 400, None, "team"),
        ("PATCH", "/admin/agents/support-bot", {"tags": None}, 400, None, "tags"),
        ("PATCH", "/admin/agents/support-bot", {"team": 5}, 400, None, "team"),
        ("PATCH", "/admin/agents/support-bot", {"team": "a/../b"}, 400, None, "team"),
        ("PATCH", "/admin/agents/support-bot", {"team": "t" * 129}, 400, None, "team"),
        ("PATCH", "/admin/agents/support-bot", {"project": "line\nbreak"}, 400, None, "project"),
        ("PATCH", "/admin/agents/support-bot", {"limits": {"rpm": "5"}}, 400, None, "limits.rpm"),
        ("PATCH", "/admin/agents/support-bot", {"limits": {"rpm": True}}, 400, None, "limits.rpm"),
        ("PATCH", "/admin/agents/support-bot", {"tags": {"k": "a\x00b"}}, 400, None, "tags.k"),
        ("PATCH", "/admin/agents/support-bot", {"tags": {"k": "v" * 257}}, 400, None, "tags.k"),
        ("PATCH", "/admin/agents/support-bot", {"models": ["m", 3]}, 400, None, "models.1"),
        ("PATCH", "/admin/agents/support-bot", [], 400, None, None),
        ("POST", "/admin/agents", {"id": "../etc", "team": "x"}, 400, None, "id"),
        ("POST", "/admin/agents", {"id": "a", "team": None}, 400, None, "team"),
        ("POST", "/admin/keys", {"agent_id": "support-bot", "alias": "x" * 300}, 400, None, "alias"),
        (
            "POST",
            "/admin/keys",
            {"agent_id": "support-bot", "expires_in_seconds": "60"},
            400,
            None,
            "expires_in_seconds",
        ),
        ("POST", "/admin/keys", {"agent_id": ["support-bot"]}, 400, None, "agent_id"),
        ("POST", "/admin/keys/key_0000000000000000/rotate", {"grace_seconds": -1}, 400, None, "grace_seconds"),
        ("POST", "/admin/keys/key_missing/revoke", None, 400, None, "key_id"),
        ("GET", "/admin/agents/a%0Ab", None, 400, None, "agent_id"),
        ("GET", "/admin/keys?agent_id=../x", None, 400, None, "agent_id"),
    ],
)
def test_bad_admin_requests_get_openai_errors(
    gateway: Gateway, method: str, path: str, body: Any, status: int, code: str | None, param: str
) -> None:
    response = gateway.admin(method, path, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == "invalid_request_error"


def test_admin_needs_the_master_key(gateway: Gateway) -> None:
    for key in ("wrong-master", PREISSUED, MASTER + "x"):
        response = gateway.admin("GET", "/admin/keys", key=key)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert gateway.http.get("/admin/agents").status_code == 401
    response = gateway.http.post("/admin/keys", content=b"{not json", headers={"Authorization": f"Bearer {MASTER}"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Request body is not valid JSON: ")
    for bad in (b"[" * 5000 + b"]" * 5000, b'{"agent_id": "\xff"}', b'{"agent_id": "\\ud800"}'):
        response = gateway.http.post("/admin/keys", content=bad, headers={"Authorization": f"Bearer {MASTER}"})
        assert response.status_code == 400, bad
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_admin_api_is_off_without_a_master_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serve_in_thread(create_app(config(tmp_path, master=None), sink=InMemorySink())) as url:
        for method, path in [("GET", "/admin/agents"), ("POST", "/admin/keys"), ("POST", "/admin/keys/k/revoke")]:
            response = httpx.request(method, f"{url}{path}", headers={"Authorization": "Bearer anything"})
            assert response.status_code == 403
            assert response.json()["error"] == {
                "message": "The admin API is off: no general_settings.master_key is configured.",
                "type": "permission_error",
                "param": None,
                "code": "admin_api_disabled",
            }
    assert "admin API off: no general_settings.master_key configured (/admin/* answers 403)" in caplog.messages


def test_tokens_over_http(gateway: Gateway, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    new = gateway.admin("POST", "/admin/keys", {"agent_id": "research-agent"}).json()
    exchange = gateway.http.post(
        "/v1/auth/token", json={"expires_in": 300}, headers={"Authorization": f"Bearer {new['key']}"}
    )
    assert exchange.status_code == 200
    body = exchange.json()
    assert (body["token_type"], body["expires_in"], body["expires_at"]) == ("bearer", 300, int(gateway.clock.now) + 300)
    token = body["access_token"]
    assert gateway.chat(token) == 200
    assert gateway.sink.records[-1].agent_id == "research-agent"

    signing_key = (tmp_path / "secrets" / "jwt-signing.secret").read_text().strip().encode()
    forged = TokenIssuer(b"not-the-key-" * 4, gateway.clock).issue("research-agent", new["key_id"]).token
    past = TokenIssuer(signing_key, lambda: gateway.clock.now - 7200).issue("research-agent", new["key_id"]).token
    assert (gateway.chat(forged), gateway.chat(past)) == (401, 401)

    for key, status in [(token, 400), (MASTER, 400), ("ml-wrong", 401)]:
        response = gateway.http.post("/v1/auth/token", headers={"Authorization": f"Bearer {key}"})
        gateway.responses.append(response.text)
        assert response.status_code == status
    gateway.clock.now += 300
    assert gateway.chat(token) == 401
    still = gateway.http.post("/v1/auth/token", headers={"Authorization": f"Bearer {new['key']}"}).json()
    assert gateway.chat(still["access_token"]) == 200
    gateway.admin("POST", f"/admin/keys/{new['key_id']}/revoke")
    assert gateway.chat(still["access_token"]) == 401
    assert_no_secret(gateway, [new["key"], token, still["access_token"]], caplog)


def test_two_gateways_sharing_postgres_see_a_revoke_within_refresh_seconds(tmp_path: Path) -> None:
    with fresh_schema() as url:
        extra = f"key_store:\n  database_url: {url}\n  hash_secret: shared-hash-secret-0123456789\n"
        extra += "  refresh_seconds: 0.05\n"
        apps = [create_app(config(tmp_path / name, extra=extra), sink=InMemorySink()) for name in ("a", "b")]
        with (
            serve_in_thread(apps[0]) as url_a,
            serve_in_thread(apps[1]) as url_b,
            httpx.Client(base_url=url_a) as http_a,
            httpx.Client(base_url=url_b) as http_b,
        ):
            a = Gateway(url_a, http_a, InMemorySink(), Clock(), [])
            b = Gateway(url_b, http_b, InMemorySink(), Clock(), [])
            new = a.admin("POST", "/admin/keys", {"agent_id": "support-bot"}).json()
            assert a.chat(new["key"]) == 200
            assert wait_for(lambda: b.chat(new["key"]) == 200)  # created on a, seen by b
            a.admin("POST", f"/admin/keys/{new['key_id']}/revoke")
            assert a.chat(new["key"]) == 401  # at once on the replica that revoked it
            assert wait_for(lambda: b.chat(new["key"]) == 401)
            assert (a.chat(PREISSUED), b.chat(PREISSUED)) == (200, 200)


def wait_for(condition: Callable[[], bool], attempts: int = 200) -> bool:
    """Poll `condition` every 50 ms (the refresh interval); no assertion on how long it took."""
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(0.05)
    return False
