"""The config model: embedded defaults load, bad files name the file and the field."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meterline.config import EMBEDDED_SOURCE, ConfigError, load_config, parse_config
from meterline.defaults import DEMO_KEYS
from meterline.secrets.config_refs import secret_fields


def test_embedded_defaults_need_no_provider_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config, source = load_config(None, environ={})
    assert source == EMBEDDED_SOURCE
    assert config.model_groups() == ["demo"]
    [demo] = config.model_list
    assert demo.litellm_params.mock_response
    assert demo.litellm_params.api_key is None
    assert {a.id: a.key for a in config.agents} == DEMO_KEYS
    assert config.storage.data_dir == "./data"


def test_meterline_yaml_in_the_working_directory_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meterline.yaml").write_text("timezone: Asia/Shanghai\n")
    config, source = load_config(None, environ={})
    assert (source, config.timezone) == ("meterline.yaml", "Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("agents: [{id: a, team: t, limits: {rpm: -1}}]", "agents[0].limits.rpm", "greater than or equal to 0"),
        ("agents: [{id: a}]", "agents[0].team", "Field required"),
        ("agents: [{id: a, team: t, colour: red}]", "agents[0].colour", "Extra inputs"),
        ("telemetry: {span_sample_ratio: 2}", "telemetry.span_sample_ratio", "less than or equal to 1"),
        ("timezone: Mars/Olympus", "timezone", "unknown time zone"),
        ("model_list: [{litellm_params: {model: x}}]", "model_list[0].model_name", "Field required"),
        ("budgets: [{name: b, period: week, amount_usd: 1}]", "budgets[0].period", "'day' or 'month'"),
        ("agents: [{id: a, team: t}, {id: a, team: u}]", None, "duplicate agent id"),
    ],
)
def test_errors_name_file_and_field(text: str, field: str | None, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "/etc/meterline.yaml", environ={})
    message = str(raised.value)
    assert message.startswith("/etc/meterline.yaml: ")
    if field is not None:
        assert raised.value.field == field
        assert f": {field}: " in message
    assert fragment in message


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("agents:\n  - id: a\n   team: [", "m.yaml", environ={})
    assert str(raised.value).startswith("m.yaml: line ")


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_unused_litellm_keys_are_accepted() -> None:
    config = parse_config(
        "model_list: [{model_name: m, litellm_params: {model: openai/gpt-4o, api_key: os.environ/K, max_retries: 3}}]\n"
        "litellm_settings: {drop_params: true}\n"
        "general_settings: {master_key: os.environ/MASTER, database_url: x}\n",
        "m.yaml",
        environ={},
    )
    assert config.model_list[0].litellm_params.api_key == "os.environ/K"
    assert config.litellm_settings == {"drop_params": True}


def test_environment_overrides_one_value() -> None:
    config = parse_config("", "m.yaml", environ={"METERLINE_TELEMETRY__COLLECTOR": "http://c:4318"})
    assert config.telemetry.collector == "http://c:4318"


MISTYPED = {
    "${MASTER_KEY}": "${MASTER_KEY} looks like an unexpanded shell variable: meterline.yaml expands none "
    "(to read the environment variable, write os.environ/MASTER_KEY)",
    "$MASTER_KEY": "$MASTER_KEY looks like an unexpanded shell variable: meterline.yaml expands none "
    "(to read the environment variable, write os.environ/MASTER_KEY)",
    "aws-secretsmanager:/x": "aws-secretsmanager:/ looks like a mistyped reference "
    "(a reference is aws-secretsmanager://NAME_OR_ARN[#field])",
    "vault:/x": "vault:/ looks like a mistyped reference (a reference is vault://MOUNT/PATH#field)",
    "gcp-secretmanager://p/k": "unknown reference scheme gcp-secretmanager:// "
    "(known: os.environ/, file://, aws-secretsmanager://, vault://)",
}
MASTER_KEY_AT = "general_settings: {{master_key: '{value}'}}\n"
API_KEY_AT = "model_list: [{{model_name: m, litellm_params: {{model: openai/gpt-4o, api_key: '{value}'}}}}]\n"


@pytest.mark.parametrize("value", sorted(MISTYPED))
@pytest.mark.parametrize(
    ("template", "field"),
    [(MASTER_KEY_AT, "general_settings.master_key"), (API_KEY_AT, "model_list[0].litellm_params.api_key")],
)
def test_a_mistyped_reference_is_refused_at_load(value: str, template: str, field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(template.format(value=value), "/etc/meterline.yaml", environ={})
    assert raised.value.field == field
    assert str(raised.value) == f"/etc/meterline.yaml: {field}: {MISTYPED[value]}"


EVERY_SECRET_FIELD = """
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_KEY, api_base: os.environ/OPENAI_BASE}
general_settings: {master_key: os.environ/MASTER}
agents: [{id: a, team: t, key: os.environ/AGENT_KEY}]
alerts:
  channels: {pager: {type: dingtalk, webhook: os.environ/HOOK, secret: os.environ/HOOK_SECRET}}
quota_store: {redis_url: os.environ/REDIS_URL}
response_cache: {backend: redis, redis_url: os.environ/CACHE_URL}
key_store:
  database_url: os.environ/DATABASE_URL
  hash_secret: os.environ/HASH_SECRET
  jwt_signing_key: os.environ/JWT_KEY
telemetry: {collector_token: os.environ/COLLECTOR_TOKEN}
dashboard: {password: os.environ/DASHBOARD_PASSWORD}
collector: {ingest_tokens: [{name: gateways, token: os.environ/INGEST_TOKEN, scopes: [usage, spans]}]}
secrets: {vault: {address: os.environ/VAULT, token: os.environ/VT, role_id: os.environ/RI, secret_id: os.environ/SI}}
"""
VAULT_FIELDS = ["secrets.vault.address", "secrets.vault.token", "secrets.vault.role_id", "secrets.vault.secret_id"]


def _set(raw: dict[str, Any], path: str, value: str) -> None:
    parts = [int(p) if p.isdigit() else p for p in re.split(r"\.|\[(\d+)\]\.?", path) if p]
    node: Any = raw
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def test_every_secret_field_refuses_a_mistyped_reference_at_load() -> None:
    """Every field `SecretRegistry.preload` resolves (meterline.secrets.config_refs) is typed
    SecretRef: adding a secret field there without the type fails here."""
    fields = list(secret_fields(parse_config(EVERY_SECRET_FIELD, "m.yaml", environ={})))
    paths = [path for path, _value, _provider in fields]
    assert [path for path, value, _provider in fields if value] == paths  # EVERY_SECRET_FIELD sets them all
    for path in [*paths, *VAULT_FIELDS]:
        raw = yaml.safe_load(EVERY_SECRET_FIELD)
        _set(raw, path, "vault:/secret/x")
        with pytest.raises(ConfigError) as raised:
            parse_config(yaml.safe_dump(raw), "m.yaml", environ={})
        assert (raised.value.field, str(raised.value)) == (path, f"m.yaml: {path}: {MISTYPED['vault:/x']}")


@pytest.mark.parametrize("value", ["${MASTER_KEY}", "aws-secretsmanager:/x"])
def test_meterline_gateway_refuses_a_mistyped_master_key_in_one_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "meterline.yaml"
    path.write_text(MASTER_KEY_AT.format(value=value))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "meterline", "gateway", "--config", str(path), "--port", "0"],
        capture_output=True, text=True, env={**environ, "MASTER_KEY": "real-master-key-never-shown"}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"meterline: error: {path}: general_settings.master_key: {MISTYPED[value]}"
    assert "Traceback" not in done.stderr and "real-master-key-never-shown" not in done.stderr
    assert done.stdout == ""


def test_every_error_of_a_file_is_reported_at_once() -> None:
    text = (
        "budgets: [{name: b, period: week, amount_usd: -1}]\n"
        "agents: [{id: a, team: t, limits: {rpm: lots, usd_per_day: -5}}, {id: a, team: u}]\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "m.yaml", environ={})
    assert [field for field, _ in raised.value.problems] == [
        "agents[0].limits.rpm",
        "agents[0].limits.usd_per_day",
        "budgets[0].period",
        "budgets[0].amount_usd",
        "agents[1].id",  # the cross-entry check, although fields above are invalid
    ]
    lines = str(raised.value).splitlines()
    assert len(lines) == 5 and all(line.startswith("m.yaml: ") for line in lines)
    assert "m.yaml: agents[1].id: duplicate agent id 'a'" in lines
    assert raised.value.field == "agents[0].limits.rpm"


@pytest.mark.parametrize(
    ("text", "unknown", "hint", "missing"),
    [
        ("agents: [{id: a, tem: support}]", "agents[0].tem", "team", "agents[0].team"),
        ("telemetry: {colector: http://c:4318}", "telemetry.colector", "collector", None),
        ("alerts: {channels: {ops: {type: slack, webhok: x}}}", "alerts.channels.ops.webhok", "webhook", None),
        ("budgets: [{name: b, period: day, amount: 5}]", "budgets[0].amount", "amount_usd", "budgets[0].amount_usd"),
    ],
)
def test_an_unknown_field_is_named_beside_the_missing_one(
    text: str, unknown: str, hint: str, missing: str | None
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "m.yaml", environ={})
    messages = dict(raised.value.problems)
    assert f"did you mean {hint!r}?" in str(messages[unknown])
    if missing is not None:
        assert messages[missing] == "Field required"
    assert str(raised.value).count("\n") == len(messages) - 1


def test_an_unknown_field_with_no_near_name_has_no_guess() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("storage: {zzz: 1}", "m.yaml", environ={})
    assert str(raised.value) == "m.yaml: storage.zzz: Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("entry", "field", "fragment"),
    [
        ("{model: foobarai/gpt-4}", "model_list[1].litellm_params.model", "unknown provider 'foobarai'"),
        ("{model: anthropc/claude-sonnet-4-5}", "model_list[1].litellm_params.model", "did you mean 'anthropic'?"),
        ("{model: gpt-4, custom_llm_provider: nope}", "model_list[1].litellm_params.custom_llm_provider", "'nope'"),
    ],
)
def test_a_provider_litellm_does_not_know_is_refused(entry: str, field: str, fragment: str) -> None:
    text = (
        "model_list:\n  - {model_name: ok, litellm_params: {model: openai/gpt-4o}}\n"
        f"  - {{model_name: m, litellm_params: {entry}}}\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "m.yaml", environ={})
    assert raised.value.field == field
    assert fragment in str(raised.value)


def test_known_bare_and_custom_providers_load() -> None:
    config = parse_config(
        "model_list:\n"
        "  - {model_name: a, litellm_params: {model: anthropic/claude-sonnet-4-5}}\n"
        "  - {model_name: b, litellm_params: {model: gpt-4o}}\n"
        "  - {model_name: c, litellm_params: {model: mine/model-1}}\n"
        "litellm_settings: {custom_provider_map: [{provider: mine, custom_handler: handlers.mine}]}\n",
        "m.yaml",
        environ={},
    )
    assert config.model_groups() == ["a", "b", "c"]


def test_meterline_gateway_refuses_an_unknown_provider_before_it_serves(tmp_path: Path) -> None:
    path = tmp_path / "meterline.yaml"
    path.write_text("model_list: [{model_name: gpt-4, litellm_params: {model: foobarai/gpt-4, api_key: sk-x}}]\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "meterline", "gateway", "--config", str(path), "--port", "0"],
        capture_output=True, text=True, env=environ, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"meterline: error: {path}: model_list[0].litellm_params.model: unknown provider 'foobarai'")
    assert "Traceback" not in done.stderr and "ready" not in done.stderr
