"""gateway/keys/policy.py: keys given in the config are long enough, each agent's own and never
the master key; refused at gateway startup and by `meterline keys apply`, naming agents, not keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.keys.policy import KeyPolicyError, check_config_keys
from gateway.telemetry.sink import InMemorySink
from meterline.cli.main import main
from meterline.config import EMBEDDED_SOURCE, MeterlineConfig, load_config, parse_config
from meterline.defaults import DEFAULT_CONFIG_YAML
from meterline.secrets import install, resolve

SHARED = "sk-agent-shared-0123456789"
MASTER = "sk-master-0123456789abcdef"
SHORT = "k-abc"
PREFIX = "refused keys in the config: "
TOO_SHORT = "is shorter than key_store.min_key_length (20 characters)"
SAME = "each agent needs its own key (or one agent's spend is billed to the other)"
IS_MASTER = "an agent's key must not open the admin API"


def config_text(*keys: str, master: str | None = None, extra: str = "") -> str:
    agents = "".join(f"  - {{id: bot-{n}, team: t, key: '{key}'}}\n" for n, key in enumerate(keys)) or "  []\n"
    general = f"general_settings: {{master_key: '{master}'}}\n" if master else ""
    models = "model_list: [{model_name: m, litellm_params: {model: openai/gpt-4o-mini}}]\n"
    return f"{models}{general}agents:\n{agents}{extra}"


def config(*keys: str, master: str | None = None, extra: str = "", tmp_path: Path | None = None) -> MeterlineConfig:
    storage = f"storage: {{data_dir: '{tmp_path}'}}\n" if tmp_path else ""
    return parse_config(config_text(*keys, master=master, extra=extra + storage), "m.yaml", environ={})


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("METERLINE_TEST_BOT0_KEY", SHARED)
    monkeypatch.setenv("METERLINE_TEST_BOT1_KEY", SHARED)
    monkeypatch.setenv("METERLINE_TEST_MASTER", MASTER)
    yield
    install(None)


def refused(cfg: MeterlineConfig) -> str:
    with pytest.raises(KeyPolicyError) as caught:
        check_config_keys(cfg, resolve)
    return str(caught.value)


def test_two_agents_resolving_to_one_key_are_refused_naming_both(tmp_path: Path) -> None:
    cfg = config("os.environ/METERLINE_TEST_BOT0_KEY", "os.environ/METERLINE_TEST_BOT1_KEY", tmp_path=tmp_path)
    with pytest.raises(KeyPolicyError) as caught:
        create_app(cfg, sink=InMemorySink())
    assert (
        str(caught.value)
        == f"{PREFIX}agents[1].key (agent bot-1) is the same key as agents[0].key (agent bot-0); {SAME}"
    )


def test_an_agent_key_that_is_the_master_key_is_refused(tmp_path: Path) -> None:
    cfg = config("sk-agent-own-0123456789", MASTER, master="os.environ/METERLINE_TEST_MASTER", tmp_path=tmp_path)
    with pytest.raises(KeyPolicyError) as caught:
        create_app(cfg, sink=InMemorySink())
    assert str(caught.value) == f"{PREFIX}agents[1].key (agent bot-1) is the master key; {IS_MASTER}"


def test_a_five_character_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyPolicyError) as caught:
        create_app(config(SHORT, tmp_path=tmp_path), sink=InMemorySink())
    assert str(caught.value) == (
        f"{PREFIX}agents[0].key (agent bot-0) is shorter than key_store.min_key_length (20 characters)"
    )


def test_a_short_master_key_is_refused() -> None:
    assert refused(config(master="sk-1234")) == (
        f"{PREFIX}general_settings.master_key is shorter than key_store.min_key_length (20 characters)"
    )


def test_every_problem_is_named_and_no_key_appears() -> None:
    cfg = config(SHORT, SHORT, "os.environ/METERLINE_TEST_MASTER", master="os.environ/METERLINE_TEST_MASTER")
    message = refused(cfg)
    assert message == PREFIX + "; ".join(
        [
            "agents[0].key (agent bot-0) is shorter than key_store.min_key_length (20 characters)",
            "agents[1].key (agent bot-1) is shorter than key_store.min_key_length (20 characters)",
            f"agents[1].key (agent bot-1) is the same key as agents[0].key (agent bot-0); {SAME}",
            f"agents[2].key (agent bot-2) is the master key; {IS_MASTER}",
        ]
    )
    assert SHORT not in message and MASTER not in message


def test_the_minimum_is_configurable() -> None:
    check_config_keys(config(SHORT, extra="key_store: {min_key_length: 5}\n"), resolve)
    assert refused(config("demo-key-support-bot", extra="key_store: {min_key_length: 21}\n")) == (
        f"{PREFIX}agents[0].key (agent bot-0) is shorter than key_store.min_key_length (21 characters)"
    )


def test_agents_without_keys_and_no_master_key_pass() -> None:
    check_config_keys(parse_config("agents: [{id: a, team: t}, {id: b, team: t}]\n", "m.yaml", environ={}), resolve)


def test_the_embedded_demo_keys_pass() -> None:
    check_config_keys(parse_config(DEFAULT_CONFIG_YAML, EMBEDDED_SOURCE, environ={}), resolve)


def test_meterline_gateway_refuses_shared_keys_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "meterline.yaml"
    path.write_text(config_text(SHARED, SHARED, extra=f"storage: {{data_dir: '{tmp_path}/data'}}\n"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "meterline", "gateway", "--config", str(path), "--port", "0"],
        capture_output=True, text=True, env=environ, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"meterline: error: {PREFIX}agents[1].key (agent bot-1) is the same key as agents[0].key (agent bot-0); {SAME}"
    )
    assert "Traceback" not in done.stderr and SHARED not in done.stderr


def test_keys_apply_refuses_a_short_key_before_touching_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "meterline.yaml"
    path.write_text(config_text("sk-agent-own-0123456789", SHORT))
    assert main(["keys", "apply", "--config", str(path), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"meterline: error: {PREFIX}agents[1].key (agent bot-1) {TOO_SHORT}")
    assert not (tmp_path / "data" / "keys.sqlite").exists()
    assert load_config(path)[0].agents[1].key == SHORT  # the file loads: the keys are judged once resolved
