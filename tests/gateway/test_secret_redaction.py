"""Issue #5's redaction test, end to end with real processes: a gateway and a collector (`python -m
meterline ...`), secrets in AWS Secrets Manager (moto over HTTP), files and the environment, a
PostgreSQL key store whose URL carries a password, an alarm channel with a webhook URL and a
signing secret. After successful requests, tokens, upstream errors that echo the provider key,
a failed refresh and a startup that stops on a bad reference, no secret value is found in the
processes' stderr, the in-process logs, the usage records and spans as they landed in Parquet,
/metrics, readiness, error bodies, or the output of `meterline secrets check`, `keys list` and
`alarms test`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.testing import MockBehaviour, ScriptedFailure, create_mock_openai
from meterline.cli.main import main
from tests.aws import aws, moto_url
from tests.conftest import free_port
from tests.e2e.processes import meterline_env, stop, wait_http_ok
from tests.gateway.keys.pg import fresh_schema
from tests.servers import serve_in_thread

__all__ = ["aws", "moto_url"]

SECRETS = {
    "provider key": "sk-provider-redact-1111aaaa",
    "master key": "sk-master-redact-2222bbbb",
    "hash secret": "hash-secret-redact-3333cccc",
    "jwt key": "jwt-signing-redact-4444dddd-0123456789abcdef",
    "database password": "db-password-redact-5555eeee",
    "webhook token": "webhook-token-redact-6666ffff",
    "webhook secret": "SECwebhook-signing-redact-7777",
    "agent key": "agent-key-redact-8888gggg",
}
SECRET_NAME = "prod/llm/redaction"


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_schema() as url:  # the local server trusts loopback, so any password connects
        yield url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRETS['database password']}@")


def write_config(path: Path, data_dir: Path, provider: str, webhook: str, api_key: str) -> None:
    secrets_dir = data_dir.parent / "mounted"
    secrets_dir.mkdir(exist_ok=True)
    (secrets_dir / "master").write_text(SECRETS["master key"] + "\n")
    (secrets_dir / "jwt").write_text(SECRETS["jwt key"] + "\n")
    path.write_text(f"""
model_list:
  - model_name: chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: "{api_key}"}}
router_settings: {{num_retries: 0}}
general_settings: {{master_key: "file://{secrets_dir}/master"}}
agents:
  - {{id: redaction-bot, team: platform, key: os.environ/METERLINE_TEST_AGENT_KEY}}
alerts:
  channels:
    oncall: {{type: dingtalk, webhook: os.environ/METERLINE_TEST_WEBHOOK,
              secret: os.environ/METERLINE_TEST_WEBHOOK_SECRET}}
key_store:
  database_url: os.environ/METERLINE_TEST_DATABASE_URL
  hash_secret: os.environ/METERLINE_TEST_HASH_SECRET
  jwt_signing_key: "file://{secrets_dir}/jwt"
storage: {{data_dir: "{data_dir}"}}
""")


def webhook_app(received: list[str]) -> Starlette:
    async def robot(request: Request) -> JSONResponse:
        received.append(str(request.url))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    return Starlette(routes=[Route("/robot/send", robot, methods=["POST"])])


@contextmanager
def process(args: list[str], cwd: Path, env: dict[str, str], stderr: Path, ready: str) -> Iterator[Any]:
    with stderr.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "meterline", *args], cwd=cwd, env=env, stderr=sink)
        try:
            wait_http_ok(ready, proc)
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_no_secret_value_anywhere(
    aws: Any,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    aws.create_secret(Name=SECRET_NAME, SecretString=json.dumps({"OPENAI_API_KEY": SECRETS["provider key"]}))
    received: list[str] = []
    seen: dict[str, str] = {}
    behaviour = MockBehaviour(accepted_keys={SECRETS["provider key"]})
    data_dir, config = tmp_path / "data", tmp_path / "meterline.yaml"
    collector_port, gateway_port = free_port(), free_port()
    with serve_in_thread(create_mock_openai(behaviour)) as provider, serve_in_thread(webhook_app(received)) as hook:
        webhook = f"{hook}/robot/send?access_token={SECRETS['webhook token']}"
        variables = {
            "METERLINE_TEST_AGENT_KEY": SECRETS["agent key"],
            "METERLINE_TEST_WEBHOOK": webhook,
            "METERLINE_TEST_WEBHOOK_SECRET": SECRETS["webhook secret"],
            "METERLINE_TEST_DATABASE_URL": database_url,
            "METERLINE_TEST_HASH_SECRET": SECRETS["hash secret"],
        }
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        env = meterline_env(METERLINE_TELEMETRY__COLLECTOR=f"http://127.0.0.1:{collector_port}", **variables)

        # A startup that stops on a bad reference (a field the JSON secret does not have).
        write_config(config, data_dir, provider, webhook, f"aws-secretsmanager://{SECRET_NAME}#ANTHROPIC_API_KEY")
        failed = subprocess.run(
            [sys.executable, "-m", "meterline", "--config", str(config), "gateway", "--port", str(gateway_port)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert failed.returncode == 2 and "no field 'ANTHROPIC_API_KEY' in the secret (fields: OPENAI_API_KEY)" in (
            failed.stderr
        )
        seen["failed startup"] = failed.stdout + failed.stderr

        write_config(config, data_dir, provider, webhook, f"aws-secretsmanager://{SECRET_NAME}#OPENAI_API_KEY")
        shared = ["--config", str(config), "--data-dir", str(data_dir)]
        base = f"http://127.0.0.1:{gateway_port}"
        with (
            process([*shared, "collector", "--port", str(collector_port), "--grpc-port", "0"], tmp_path, env,
                    tmp_path / "collector.stderr", f"http://127.0.0.1:{collector_port}/health") as collector,
            process([*shared, "gateway", "--port", str(gateway_port)], tmp_path, env,
                    tmp_path / "gateway.stderr", f"{base}/health/readiness") as gateway,
            httpx.Client(base_url=base) as http,
        ):  # fmt: skip
            seen.update(exercise(http, base, behaviour, aws))
            assert stop(gateway) == 0
            assert stop(collector) == 0
        seen["gateway stderr"] = (tmp_path / "gateway.stderr").read_text()
        seen["collector stderr"] = (tmp_path / "collector.stderr").read_text()

        capsys.readouterr()
        assert main([*shared, "secrets", "check"]) == 1  # the deleted provider secret fails
        assert main([*shared, "keys", "list"]) == 0
        assert main([*shared, "alarms", "test", "--channel", "oncall"]) == 0
        cli = capsys.readouterr()
        seen["cli output"] = cli.out + cli.err
    assert len(received) == 1 and "sign=" in received[0]  # the test message went out, signed
    assert "aws-secretsmanager://prod/llm/redaction#OPENAI_API_KEY" in seen["cli output"]
    assert "redaction-bot" in seen["cli output"]

    catalog = duckdb.connect()
    for table in ("usage", "spans"):
        glob = str(data_dir / table / "*" / "*.parquet")
        seen[f"{table} parquet"] = str(
            catalog.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM read_parquet('{glob}')").fetchall()
        )
    statuses = catalog.execute(
        f"SELECT status, count(*) FROM read_parquet('{data_dir}/usage/*/*.parquet') GROUP BY status ORDER BY status"
    ).fetchall()
    assert statuses == [("error", 3), ("ok", 3)]  # the agent's own 401 is no provider request
    seen["in-process logs"] = caplog.text
    assert SECRETS["provider key"] in seen["provider echoes"]  # the upstream really sent it back
    found = {(name, where) for name, value in SECRETS.items() for where, text in seen.items() if value in text}
    assert found == {("provider key", "provider echoes")}


def exercise(http: httpx.Client, base: str, behaviour: MockBehaviour, aws: Any) -> dict[str, str]:
    """Requests that succeed, fail upstream and fail a refresh; every body the gateway answers."""
    bodies: list[str] = []
    echoed = f"Incorrect API key provided: {SECRETS['provider key']}"
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=SECRETS["agent key"], max_retries=0)
    messages: Any = [{"role": "user", "content": "hello"}]

    def chat(key: str | None = None, stream: bool = False) -> int:
        sdk = client if key is None else client.with_options(api_key=key)
        try:
            if stream:
                list(sdk.chat.completions.create(model="chat", messages=messages, stream=True))
            else:
                sdk.chat.completions.create(model="chat", messages=messages)
        except openai.APIStatusError as exc:
            bodies.append(exc.response.text)
            return exc.status_code
        return 200

    token = http.post("/v1/auth/token", headers={"Authorization": f"Bearer {SECRETS['agent key']}"}).json()
    outcomes = [chat(), chat(stream=True), chat(token["access_token"])]
    behaviour.fail_next(ScriptedFailure(500, message=echoed))
    outcomes.append(chat())  # an upstream error that quotes the key
    behaviour.fail_next(ScriptedFailure(401, message=echoed))
    outcomes.append(chat())  # refused: refreshed, the key is unchanged, so no retry: the agent sees 502
    outcomes.append(chat("not-a-key"))  # the agent's own error
    master = {"Authorization": f"Bearer {SECRETS['master key']}"}
    bodies += [
        http.get("/admin/keys", headers=master).text,
        http.get("/admin/keys", headers={"Authorization": "x"}).text,
    ]
    # The secret is deleted and the provider revokes the key: the refresh fails, the request too.
    aws.delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    behaviour.accepted_keys = {"sk-another-key"}
    outcomes.append(chat())
    readiness = http.get("/health/readiness")
    assert outcomes == [200, 200, 200, 500, 502, 401, 502]
    assert readiness.json()["status"] == "degraded"
    return {
        "error bodies": "\n".join(bodies),
        "metrics": http.get("/metrics").text,
        "readiness": readiness.text,
        "provider echoes": echoed,
    }
