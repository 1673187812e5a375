"""`meterline spend`, `analytics run`, `alarms status` and `dashboard` with an S3 data dir (moto in
server mode over real HTTP): the ledger is read from S3, the marts and alarm state live under
`storage.local_dir`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from collector.writer import ParquetWriter
from meterline.cli.main import main
from meterline.layout import USAGE_TABLE, DataLayout
from meterline.storage import open_target
from meterline.usage_record import UsageRecord
from tests.aws import REGION, moto_url, reset, use_moto
from tests.ledger_fixtures import exact_usd, sample_records

__all__ = ["moto_url"]  # the session-wide moto server fixture

BUCKET = "ledger"
TODAY = dt.date(2026, 11, 14)


@pytest.fixture(autouse=True)
def quiet_logging(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """`main` attaches a handler to the root logger on pytest's captured stderr, which is closed
    after the test; moto's request log must not write to it from its server thread."""
    caplog.set_level(logging.WARNING, logger="werkzeug")
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)


@pytest.fixture
def ledger(tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[UsageRecord]]:
    """Five days of records published to s3://ledger/prod by the collector's writer."""
    reset(moto_url)
    use_moto(monkeypatch, moto_url)
    boto3.client("s3", endpoint_url=moto_url, region_name=REGION).create_bucket(Bucket=BUCKET)
    records = sample_records(TODAY, days=5)
    target = open_target(DataLayout.at(tmp_path / "wal"), f"s3://{BUCKET}/prod", endpoint_url=moto_url)
    ParquetWriter(target).write_sync(USAGE_TABLE, [r.as_row() for r in records])
    yield records


def config_file(tmp_path: Path, moto_url: str, bucket: str = BUCKET) -> str:
    path = tmp_path / "meterline.yaml"
    storage = {"data_dir": f"s3://{bucket}/prod", "local_dir": str(tmp_path / "local"), "s3_endpoint_url": moto_url}
    path.write_text(json.dumps({"storage": storage}))  # JSON is YAML
    return str(path)


def test_spend_over_an_s3_ledger_prints_the_exact_totals(
    tmp_path: Path, moto_url: str, ledger: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    since = TODAY - dt.timedelta(days=2)
    args = ["spend", "--config", config_file(tmp_path, moto_url), "--by", "team", "--format", "json"]

    assert main([*args, "--since", since.isoformat(), "--until", TODAY.isoformat()]) == 0

    window = [r for r in ledger if since <= r.date <= TODAY]
    by_team: dict[str, list[UsageRecord]] = defaultdict(list)
    for r in window:
        by_team[r.team].append(r)
    document = json.loads(capsys.readouterr().out)
    assert document["total"] == {
        "requests": 72,
        "input_tokens": sum(r.input_tokens for r in window),
        "output_tokens": sum(r.output_tokens for r in window),
        "cost_usd": exact_usd(window),
    }
    assert {row["team"]: (row["requests"], row["cost_usd"]) for row in document["rows"]} == {
        team: (len(group), exact_usd(group)) for team, group in by_team.items()
    }
    marts = tmp_path / "local" / "marts"
    assert sorted(p.name for p in marts.iterdir() if p.is_dir()) == ["latency_daily", "spend_daily", "spend_monthly"]


def test_analytics_run_and_alarm_status_use_local_dir(
    tmp_path: Path, moto_url: str, ledger: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, moto_url)

    assert main(["analytics", "run", "--config", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    local = (tmp_path / "local").resolve()
    groups = {(r.date, r.agent_id, r.model or r.model_requested, r.provider) for r in ledger}  # UTC days
    assert lines[0] == f"spend_daily: {len(groups)} rows -> {local}/marts/spend_daily/data.parquet"
    assert main(["alarms", "status", "--config", config]) == 0
    assert capsys.readouterr().out == "no alarms yet\n"
    assert not (tmp_path / "s3:").exists()  # no local folder named after the URL


def test_the_dashboard_reads_the_marts_under_local_dir(
    tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[dict[str, str]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        launched.append(env)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    with pytest.raises(SystemExit):
        main(["dashboard", "--config", config_file(tmp_path, moto_url)])

    assert launched[0]["METERLINE_DATA_DIR"] == str((tmp_path / "local").resolve())


def test_a_missing_bucket_is_a_one_line_error(
    tmp_path: Path, moto_url: str, ledger: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["spend", "--config", config_file(tmp_path, moto_url, bucket="no-such-bucket")])

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("meterline: error: cannot read the ledger at s3://no-such-bucket/prod/usage: ")
    assert "Traceback" not in err and "testing" not in err  # nor the access key


def test_a_malformed_s3_data_dir_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analytics", "run", "--data-dir", "s3://", "--config", config_file(tmp_path, "http://x")]) == 2
    assert "--data-dir / storage.data_dir: 's3://' is not an s3://bucket/prefix URL" in capsys.readouterr().err
