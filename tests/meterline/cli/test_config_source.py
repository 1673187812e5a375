"""`--config env:NAME`: a container's meterline.yaml from an environment variable."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest

from meterline.cli.config_source import materialize
from meterline.cli.main import main
from meterline.config import ConfigError, load_config

YAML = "env: prod\ntenant: acme\nstorage: {retention_days: 30}\n"


def test_the_variable_becomes_a_private_file_the_verb_reads() -> None:
    args = argparse.Namespace(config=Path("env:METERLINE_CONFIG_YAML"))

    materialize(args, {"METERLINE_CONFIG_YAML": YAML})

    assert stat.S_IMODE(os.stat(args.config).st_mode) == 0o600
    config, source = load_config(args.config, environ={})
    assert (config.env, config.tenant, config.storage.retention_days) == ("prod", "acme", 30)
    assert source.endswith("METERLINE_CONFIG_YAML.yaml")


@pytest.mark.parametrize("config", [None, Path("meterline.yaml")])
def test_a_file_or_no_config_is_left_alone(config: Path | None) -> None:
    args = argparse.Namespace(config=config)
    materialize(args, {})
    assert args.config == config


def test_an_unset_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="METERLINE_CONFIG_YAML is not set or empty"):
        materialize(argparse.Namespace(config=Path("env:METERLINE_CONFIG_YAML")), {})


def test_the_cli_exits_2_naming_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "env:NOPE_NOT_SET", "spend"]) == 2
    assert "NOPE_NOT_SET is not set or empty" in capsys.readouterr().err
