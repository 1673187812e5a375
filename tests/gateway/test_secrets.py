"""The gateway's secrets: startup stops on a reference it cannot resolve, a failed refresh shows
in readiness and /metrics, and no secret value reaches logs, records, spans, metrics or bodies."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, ScriptedFailure, create_mock_openai
from meterline.cli.main import main
from meterline.config import MeterlineConfig, parse_config
from meterline.secrets import SecretResolutionError, install
from tests.aws import aws, moto_url
from tests.conftest import free_port
from tests.meterline.secrets.fake_vault import FakeVault
from tests.servers import serve_in_thread

__all__ = ["aws", "moto_url"]

AGENT_KEY = "agent-key-secrets-test-0001"
PROVIDER_KEY = "sk-provider-redaction-value-0002"
MASTER_KEY = "sk-master-redaction-value-0003"
SECRET = "prod/llm/redaction"
REFERENCE = f"aws-secretsmanager://{SECRET}#OPENAI_API_KEY"


def config(api_key: str, tmp_path: Path, api_base: str = "http://127.0.0.1:9/v1", extra: str = "") -> MeterlineConfig:
    text = f"""
model_list:
  - model_name: chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{api_base}", api_key: "{api_key}"}}
general_settings: {{master_key: os.environ/METERLINE_TEST_MASTER_KEY}}
agents:
  - {{id: secrets-bot, team: platform, key: {AGENT_KEY}}}
storage: {{data_dir: "{tmp_path}"}}
{extra}"""
    return parse_config(text, "test", environ={})


@pytest.fixture(autouse=True)
def _master_key(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("METERLINE_TEST_MASTER_KEY", MASTER_KEY)
    yield
    install(None)


AT = "(at model_list[0].litellm_params.api_key)"
NOT_FOUND = "ResourceNotFoundException"
SHOWN_NEVER = "sk-value-never-shown-0004"
KNOWN = "os.environ/, file://, aws-secretsmanager://, vault://"


@pytest.mark.parametrize(
    ("reference", "backend", "reason", "vault_token"),
    [
        # A mistyped reference (gcp-secretmanager://, ${NAME}, vault:/x) is refused earlier, when the
        # file is loaded: tests/meterline/test_config.py.
        (
            "os.environ/METERLINE_TEST_NOT_SET",
            "env",
            "environment variable METERLINE_TEST_NOT_SET is not set or empty",
            "root-token",
        ),
        ("file:///nonexistent/openai", "file", "no file at /nonexistent/openai", "root-token"),
        (
            "aws-secretsmanager://prod/none",
            "aws-secretsmanager",
            f"no such secret or version ({NOT_FOUND})",
            "root-token",
        ),
        (
            "aws-secretsmanager://prod/llm/other#OPENAI_API_KEY",
            "aws-secretsmanager",
            "no field 'OPENAI_API_KEY' in the secret (fields: ANTHROPIC_API_KEY)",
            "root-token",
        ),
        ("vault://secret/meterline#openai", "vault", "Vault answered HTTP 403: permission denied", "wrong-token"),
        (
            "vault://secret/absent#openai",
            "vault",
            "no secret or version at secret/data/absent (HTTP 404)",
            "root-token",
        ),
        ("vault://secret/meterline#nope", "vault", "no field 'nope' in the secret (fields: openai)", "root-token"),
        ("vault://secret", "vault", "needs vault://MOUNT/PATH#field", "root-token"),
    ],
)
def test_startup_stops_on_a_reference_it_cannot_resolve(
    aws: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    reference: str,
    backend: str,
    reason: str,
    vault_token: str,
) -> None:
    aws.create_secret(Name="prod/llm/other", SecretString=json.dumps({"ANTHROPIC_API_KEY": SHOWN_NEVER}))
    vault = FakeVault()
    vault.write("secret/meterline", {"openai": SHOWN_NEVER})
    with serve_in_thread(vault.app()) as vault_url:
        monkeypatch.setenv("VAULT_ADDR", vault_url)
        monkeypatch.setenv("VAULT_TOKEN", vault_token)
        with pytest.raises(SecretResolutionError) as caught:
            create_app(config(reference, tmp_path), sink=InMemorySink())
        assert str(caught.value) == f"cannot resolve secret reference {reference!r} ({backend}): {reason} {AT}"
        # Through the CLI: one clear line on stderr, exit 2, no traceback.
        path = tmp_path / "meterline.yaml"
        path.write_text(
            "model_list:\n  - model_name: chat\n"
            f'    litellm_params: {{model: openai/gpt-4o-mini, api_key: "{reference}"}}\n'
            f'storage: {{data_dir: "{tmp_path}"}}\n'
        )
        assert main(["gateway", "--config", str(path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert f"meterline: error: {caught.value}\n" in err
    assert "Traceback" not in err and vault_token not in err and SHOWN_NEVER not in err


def test_preload_refuses_a_mistyped_reference_however_the_config_was_built(tmp_path: Path) -> None:
    """model_copy skips validation, so only SecretRegistry.preload stands between the value and the admin API."""
    built = config("os.environ/METERLINE_TEST_MASTER_KEY", tmp_path)
    general = built.general_settings.model_copy(update={"master_key": "${MASTER_KEY}"})
    with pytest.raises(SecretResolutionError) as caught:
        create_app(built.model_copy(update={"general_settings": general}), sink=InMemorySink())
    assert str(caught.value) == (
        "cannot resolve secret reference '${MASTER_KEY}' (unknown): ${MASTER_KEY} looks like an unexpanded shell "
        "variable: meterline.yaml expands none (to read the environment variable, write os.environ/MASTER_KEY) "
        "(at general_settings.master_key)"
    )


def test_an_unknown_scheme_names_the_known_ones(tmp_path: Path) -> None:
    built = config("os.environ/METERLINE_TEST_MASTER_KEY", tmp_path)
    params = built.model_list[0].litellm_params.model_copy(update={"api_key": "gcp-secretmanager://p/k"})
    entry = built.model_list[0].model_copy(update={"litellm_params": params})
    with pytest.raises(SecretResolutionError) as caught:
        create_app(built.model_copy(update={"model_list": [entry]}), sink=InMemorySink())
    assert str(caught.value) == (
        f"cannot resolve secret reference 'gcp-secretmanager://p/k' (unknown): unknown reference scheme "
        f"gcp-secretmanager:// (known: {KNOWN}) {AT}"
    )


def test_an_unreachable_vault_stops_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("VAULT_TOKEN", "vault-token-not-shown")
    with pytest.raises(SecretResolutionError) as caught:
        create_app(config("vault://secret/meterline#openai", tmp_path), sink=InMemorySink())
    assert str(caught.value) == (
        "cannot resolve secret reference 'vault://secret/meterline#openai' (vault): "
        f"cannot reach Vault at http://127.0.0.1:{port} (ConnectError) {AT}"
    )


def test_a_broken_master_key_reference_stops_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERLINE_TEST_MASTER_KEY")
    with pytest.raises(SecretResolutionError) as caught:
        create_app(config("sk-literal", tmp_path), sink=InMemorySink())
    assert str(caught.value) == (
        "cannot resolve secret reference 'os.environ/METERLINE_TEST_MASTER_KEY' (env): environment variable "
        "METERLINE_TEST_MASTER_KEY is not set or empty (at general_settings.master_key)"
    )


def test_failed_refresh_degrades_readiness_and_nothing_leaks(
    aws: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    aws.create_secret(Name=SECRET, SecretString=json.dumps({"OPENAI_API_KEY": PROVIDER_KEY}))
    behaviour = MockBehaviour(accepted_keys={PROVIDER_KEY})
    sink = InMemorySink()
    bodies: list[str] = []
    with serve_in_thread(create_mock_openai(behaviour)) as provider:
        app = create_app(config(REFERENCE, tmp_path, f"{provider}/v1"), sink=sink)
        with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
            auth = {"Authorization": f"Bearer {AGENT_KEY}"}
            body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

            def chat(stream: bool = False) -> httpx.Response:
                response = http.post("/v1/chat/completions", json={**body, "stream": stream}, headers=auth)
                bodies.append(response.text)
                return response

            assert chat().status_code == 200
            assert chat(stream=True).status_code == 200
            assert http.get("/health/readiness").json()["status"] == "ready"
            # A provider that refuses the key and echoes it back.
            behaviour.fail_next(ScriptedFailure(401, message=f"Incorrect API key provided: {PROVIDER_KEY}"))
            refused = chat()
            assert (refused.status_code, refused.json()["error"]["code"]) == (502, "upstream_auth_error")
            # The secret disappears and the provider revokes the key: the refresh fails.
            aws.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
            behaviour.accepted_keys = {"sk-some-other-key"}
            assert chat().status_code == 502
            readiness = http.get("/health/readiness")
            metrics = http.get("/metrics").text
            bodies.extend([readiness.text, metrics, http.get("/v1/models", headers=auth).text])
    assert readiness.status_code == 200
    assert readiness.json()["status"] == "degraded"
    assert readiness.json()["secrets_degraded"] == [
        {
            "reference": REFERENCE,
            "backend": "aws-secretsmanager",
            "failures": 1,
            "error": "no such secret or version (ResourceNotFoundException)",
        }
    ]
    labels = f'backend="aws-secretsmanager",reference="{REFERENCE}"'
    assert f"meterline_secret_refresh_failures_total{{{labels}}} 1.0" in metrics
    assert f"meterline_secret_degraded{{{labels}}} 1.0" in metrics
    assert [r.status for r in sink.records] == ["ok", "ok", "error", "error"]
    assert [r.provider_key_version is not None for r in sink.records] == [True, True, False, False]
    assert "refresh failed, keeping version" in caplog.text
    places = {
        "logs": caplog.text,
        "records": repr(sink.records),
        "spans": repr(sink.spans),
        "bodies": "\n".join(bodies),
    }
    for secret in (PROVIDER_KEY, MASTER_KEY, AGENT_KEY):
        assert [where for where, text in places.items() if secret in text] == []
