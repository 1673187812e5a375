"""Issue #5's rotation tests: a provider key in AWS Secrets Manager (moto server over HTTP) or in
Vault (a local server following Vault's KV v2 and AppRole API) is rotated twice while an agent
sends a steady stream of requests through the official openai SDK; in Vault the AppRole token
also expires once. None fails, and the ledger shows the key versions switch in order."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import openai

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, create_mock_openai
from meterline.config import MeterlineConfig, parse_config
from meterline.secrets import SecretRegistry
from tests.aws import aws, moto_url
from tests.meterline.secrets.fake_vault import FakeVault
from tests.servers import serve_in_thread

__all__ = ["aws", "moto_url"]

AGENT_KEY = "agent-key-rotation-0123456"
SECRET = "prod/llm/provider-keys"
REFERENCE = f"aws-secretsmanager://{SECRET}#OPENAI_API_KEY"
KEYS = ["sk-rotation-one-1111", "sk-rotation-two-2222", "sk-rotation-three-3333"]


def gateway_config(provider_url: str, data_dir: Path, reference: str = REFERENCE, extra: str = "") -> MeterlineConfig:
    text = f"""
model_list:
  - model_name: chat
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {provider_url}/v1
      api_key: {reference}
{extra}
agents:
  - id: rotation-bot
    team: platform
    key: {AGENT_KEY}
storage: {{data_dir: {data_dir}}}
"""
    return parse_config(text, "test", environ={})


class SteadyClient:
    """Sends one request after another until stopped; counts outcomes, lets the test wait for N."""

    def __init__(self, url: str) -> None:
        self._client = openai.OpenAI(base_url=f"{url}/v1", api_key=AGENT_KEY, max_retries=0, timeout=30)
        self.statuses: list[int] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-client", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello"}])
                status = 200
            except openai.APIStatusError as exc:
                status = exc.status_code
            except openai.APIConnectionError:
                status = 0
            with self._changed:
                self.statuses.append(status)
                self._changed.notify_all()

    def start(self) -> None:
        self._thread.start()

    def wait_for_more(self, count: int) -> None:
        with self._changed:
            target = len(self.statuses) + count
            assert self._changed.wait_for(lambda: len(self.statuses) >= target, timeout=60)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._client.close()


def rotate(aws: Any, behaviour: MockBehaviour, key: str) -> str:
    """The order of a real rotation: the new key is stored, then the provider revokes the old one."""
    version: str = aws.put_secret_value(SecretId=SECRET, SecretString=json.dumps({"OPENAI_API_KEY": key}))["VersionId"]
    behaviour.accepted_keys = {key}
    return version


def test_two_rotations_under_steady_traffic_fail_no_request(aws: Any, tmp_path: Path) -> None:
    versions = [aws.create_secret(Name=SECRET, SecretString=json.dumps({"OPENAI_API_KEY": KEYS[0]}))["VersionId"]]
    behaviour = MockBehaviour(accepted_keys={KEYS[0]})
    sink = InMemorySink()
    with serve_in_thread(create_mock_openai(behaviour)) as provider:
        app = create_app(gateway_config(provider, tmp_path), sink=sink)
        with serve_in_thread(app) as url:
            client = SteadyClient(url)
            client.start()
            client.wait_for_more(5)
            versions.append(rotate(aws, behaviour, KEYS[1]))
            client.wait_for_more(5)
            versions.append(rotate(aws, behaviour, KEYS[2]))
            client.wait_for_more(5)
            client.stop()
            registry: SecretRegistry = app.state.secrets
            (status,) = registry.status()
            refreshes = registry.live(REFERENCE).refreshes
    assert set(client.statuses) == {200}
    assert len(sink.records) == len(client.statuses)
    served = [r.provider_key_version for r in sink.records]
    switches = [v for i, v in enumerate(served) if i == 0 or served[i - 1] != v]
    assert switches == versions
    # Each rotation cost one refused attempt, one refresh and one retry; the agent never saw it.
    assert [r.attempts for r in sink.records].count(2) == 2
    assert {r.attempts for r in sink.records} == {1, 2}
    assert (status.version, status.failures, status.degraded) == (versions[2], 0, False)
    assert refreshes == 2


VAULT_REFERENCE = "vault://secret/llm#openai"


def test_vault_two_rotations_and_an_expired_token_fail_no_request(tmp_path: Path) -> None:
    vault = FakeVault(approles={"meterline-role": "meterline-secret-id"})
    versions = [vault.write("secret/llm", {"openai": KEYS[0]})]
    behaviour = MockBehaviour(accepted_keys={KEYS[0]})
    sink = InMemorySink()
    with serve_in_thread(vault.app()) as vault_url, serve_in_thread(create_mock_openai(behaviour)) as provider:
        settings = (
            f"secrets: {{vault: {{address: '{vault_url}', auth: approle, role_id: meterline-role, "
            "secret_id: meterline-secret-id}}"
        )
        app = create_app(gateway_config(provider, tmp_path, VAULT_REFERENCE, settings), sink=sink)
        with serve_in_thread(app) as url:
            client = SteadyClient(url)
            client.start()
            client.wait_for_more(5)
            versions.append(vault.write("secret/llm", {"openai": KEYS[1]}))  # a new KV version
            behaviour.accepted_keys = {KEYS[1]}
            client.wait_for_more(5)
            vault.revoke_all()  # the AppRole token has expired: Vault answers 403 to it
            client.wait_for_more(5)
            versions.append(vault.write("secret/llm", {"openai": KEYS[2]}))
            behaviour.accepted_keys = {KEYS[2]}
            client.wait_for_more(5)
            client.stop()
            (status,) = app.state.secrets.status()
    assert set(client.statuses) == {200}
    served = [r.provider_key_version for r in sink.records]
    assert len(served) == len(client.statuses)
    assert [v for i, v in enumerate(served) if i == 0 or served[i - 1] != v] == [str(v) for v in versions]
    assert [r.attempts for r in sink.records].count(2) == 2
    logins = [r for r in vault.requests if r.path == "/v1/auth/approle/login"]
    reads = [r for r in vault.requests if r.method == "GET"]
    assert len(logins) == 2  # at startup, and after the token expired
    # Startup and the first rotation; the second rotation's read is refused (403), then logs in again.
    assert [r.headers["x-vault-token"] for r in reads] == ["hvs.token-1"] * 3 + ["hvs.token-2"]
    assert (status.version, status.failures, status.degraded) == ("3", 0, False)
