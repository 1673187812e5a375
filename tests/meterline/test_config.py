"""The config model: embedded defaults load, bad files name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterline.config import EMBEDDED_SOURCE, ConfigError, load_config, parse_config
from meterline.defaults import DEMO_KEYS


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
