"""`meterline dashboard` hands Streamlit the data dir, the configured time zone and the budgets,
never a channel, a webhook or a secret."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meterline.cli.main import main

CONFIG = """
timezone: Asia/Shanghai
budgets:
  - name: support-monthly
    scope: {team: support}
    period: month
    amount_usd: 1000
    channels: [oncall]
alerts:
  dashboard_url: https://meterline.example.com
  channels:
    oncall:
      type: dingtalk
      webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok-9f8e7d"
      secret: SEC-dt-secret
"""


class Launched(Exception):
    """Raised by the stand-in for `os.execve`, which never returns."""


def test_the_page_gets_the_time_zone_and_budgets_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "meterline.yaml"
    config.write_text(CONFIG)
    launched: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        launched.append((path, argv, env))
        raise Launched

    monkeypatch.setattr(os, "execve", execve)

    with pytest.raises(Launched):
        main(["dashboard", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", "8599"])

    (_path, argv, env) = launched[0]
    assert argv[argv.index("--server.port") + 1] == "8599"
    assert env["METERLINE_DATA_DIR"] == str((tmp_path / "data").resolve())
    assert env["METERLINE_TIMEZONE"] == "Asia/Shanghai"
    assert json.loads(env["METERLINE_BUDGETS"]) == [
        {
            "name": "support-monthly",
            "scope": {"team": "support"},
            "period": "month",
            "amount_usd": 1000.0,
            "thresholds": [50.0, 80.0, 100.0],
        }
    ]
    assert "METERLINE_LEDGER_URL" not in env  # a local ledger: the pages read the data dir
    ours = {key: value for key, value in env.items() if os.environ.get(key) != value}
    assert not any("tok-9f8e7d" in value or "SEC-dt-secret" in value for value in ours.values())


def test_an_s3_ledger_is_handed_to_the_pages_with_its_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "meterline.yaml"
    config.write_text(
        "storage: {data_dir: 's3://ledger-bucket/meterline', local_dir: '%s',"
        " s3_endpoint_url: 'http://127.0.0.1:1', s3_region: eu-central-1}\n" % (tmp_path / "local")
    )
    launched: list[dict[str, str]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        launched.append(env)
        raise Launched

    monkeypatch.setattr(os, "execve", execve)
    with pytest.raises(Launched):
        main(["dashboard", "--config", str(config), "--port", "8599"])

    env = launched[0]
    assert env["METERLINE_LEDGER_URL"] == "s3://ledger-bucket/meterline"
    assert env["METERLINE_S3_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["METERLINE_S3_REGION"] == "eu-central-1"
