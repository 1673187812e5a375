"""`meterline up`'s banner prints the demo keys only when they really are the agents' keys."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from meterline.cli.commands import load
from meterline.cli.up import Supervisor
from meterline.defaults import DEMO_KEYS

DEMO_MODEL = "model_list: [{model_name: demo, litellm_params: {model: openai/gpt-4o-mini, mock_response: hi}}]\n"
GPT = "model_list: [{model_name: gpt-4o-mini, litellm_params: {model: openai/gpt-4o-mini}}]\n"


def supervisor(tmp_path: Path, text: str | None) -> Supervisor:
    config_path = None
    if text is not None:
        config_path = tmp_path / "meterline.yaml"
        config_path.write_text(text)
    args = argparse.Namespace(
        config=config_path, data_dir=str(tmp_path / "data"), host="127.0.0.1", collector_grpc_port=None,
        no_dashboard=True,
    )  # fmt: skip
    config, layout = load(args)
    return Supervisor(args, config, layout)


def banner(sup: Supervisor, capsys: pytest.CaptureFixture[str]) -> str:
    sup._banner("http://127.0.0.1:4000", "http://127.0.0.1:4318")
    return capsys.readouterr().out


def test_the_embedded_defaults_print_both_demo_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = banner(supervisor(tmp_path, None), capsys)

    assert "demo agent keys (embedded defaults, model 'demo'):" in out
    assert all(key in out for key in DEMO_KEYS.values())


BOTH = (
    "model_list:\n"
    "  - {model_name: demo, litellm_params: {model: openai/gpt-4o-mini, mock_response: hi}}\n"
    "  - {model_name: gpt-4o-mini, litellm_params: {model: openai/gpt-4o-mini}}\n"
)


@pytest.mark.parametrize(
    "config",
    [
        # An agent named like the demo's, with its own key: the demo key is not its key.
        DEMO_MODEL + "agents: [{id: support-bot, team: support, key: os.environ/SUPPORT_BOT_KEY}]\n",
        # The demo key, but no demo model to call with it.
        GPT + f"agents: [{{id: support-bot, team: support, key: {DEMO_KEYS['support-bot']}}}]\n",
        # The demo key, but the agent may not call `demo`.
        BOTH
        + f"agents: [{{id: support-bot, team: support, key: {DEMO_KEYS['support-bot']}, models: [gpt-4o-mini]}}]\n",
    ],
    ids=["own-key", "no-demo-model", "demo-not-allowed"],
)
def test_an_agent_named_support_bot_gets_no_demo_banner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str
) -> None:
    sup = supervisor(tmp_path, config)

    out = banner(sup, capsys)

    assert sup._demo_keys() == {}
    assert "demo agent keys" not in out and DEMO_KEYS["support-bot"] not in out
