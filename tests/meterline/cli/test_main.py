"""The `meterline` program as a user meets it, in real processes: a mistyped data dir is an error
that creates nothing, one-shot verbs print their answer and no log lines, `alarms test` says how
to add a channel, and `analytics run` alarms like `analytics serve` does."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.jobs import run_once
from meterline.layout import DataLayout
from tests.alarms.receivers import Receiver, serve
from tests.ledger_fixtures import sample_records, write_ledger

ENV = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}

READING_VERBS = [
    ["spend"],
    ["spend", "--format", "json"],
    ["traces"],
    ["trace", "0" * 32],
    ["sql", "SELECT 1"],
    ["quarantine"],
    ["analytics", "run"],
    ["alarms", "status"],
    ["keys", "list"],
]


def meterline(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterline", *args],
        cwd=cwd,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("verb", READING_VERBS, ids=" ".join)
def test_a_reading_verb_on_a_missing_data_dir_is_an_error_that_creates_nothing(tmp_path: Path, verb: list[str]) -> None:
    missing = tmp_path / "no" / "such" / "dir"

    done = meterline("--data-dir", str(missing), *verb, cwd=tmp_path)

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"meterline: error: no data dir at {missing} (--data-dir)")
    assert done.stdout == ""
    assert not (tmp_path / "no").exists()


def test_spend_on_the_configured_data_dir_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "meterline.yaml").write_text("storage: {data_dir: ./ledger-typo}\n")

    done = meterline("spend", cwd=tmp_path)

    assert done.returncode == 2
    assert f"no data dir at {tmp_path / 'ledger-typo'} (storage.data_dir)" in done.stderr
    assert not (tmp_path / "ledger-typo").exists()


def test_keys_commands_print_only_their_output_unless_verbose(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()

    applied = meterline("--data-dir", str(data), "keys", "apply", cwd=tmp_path)
    created = meterline("--data-dir", str(data), "keys", "create", "--agent", "support-bot", cwd=tmp_path)
    listed = meterline("--data-dir", str(data), "keys", "list", cwd=tmp_path)
    verbose = meterline("--data-dir", str(data), "keys", "list", "-v", cwd=tmp_path)

    assert [p.returncode for p in (applied, created, listed, verbose)] == [0, 0, 0, 0], applied.stderr
    # Each printed three INFO lines (generated secrets, the key store) before its output.
    assert applied.stderr == created.stderr == listed.stderr == ""
    assert applied.stdout.startswith("Plan: ") and created.stdout.startswith("Created key ")
    assert "support-bot" in listed.stdout
    assert "INFO gateway.keys: key store: SqliteKeyStore" in verbose.stderr
    assert verbose.stdout == listed.stdout


def test_alarms_test_without_channels_says_how_to_add_one(tmp_path: Path) -> None:
    (tmp_path / "meterline.yaml").write_text("storage: {data_dir: ./data}\n")

    done = meterline("alarms", "test", "--channel", "slack", cwd=tmp_path)

    assert done.returncode == 2
    assert "not under alerts.channels ()" not in done.stderr
    assert done.stderr.splitlines()[0] == (
        "meterline: error: --channel 'slack': no alert channels are configured; "
        "add one under alerts.channels in the config, e.g."
    )
    assert "      slack: {type: slack, webhook: os.environ/SLACK_WEBHOOK_URL}" in done.stderr


def test_alarms_test_with_another_channel_lists_the_configured_ones(tmp_path: Path) -> None:
    channels = "{ops: {type: slack, webhook: os.environ/X}, pager: {type: slack, webhook: os.environ/Y}}"
    (tmp_path / "meterline.yaml").write_text(f"alerts: {{channels: {channels}}}\n")

    done = meterline("alarms", "test", "--channel", "slack", cwd=tmp_path)

    assert done.returncode == 2
    assert "--channel 'slack': not under alerts.channels; configured: ops, pager" in done.stderr


def test_a_one_shot_analytics_run_fires_the_budget_alarms(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    layout = DataLayout.at(tmp_path / "data")
    write_ledger(layout, [r for r in sample_records(today, days=1) if r.date == today])
    config = {
        "timezone": "UTC",
        "budgets": [
            {"name": "all-daily", "scope": {}, "period": "day", "amount_usd": 0.001, "thresholds": [50],
             "channels": ["finance-slack"]}
        ],
        "alerts": {"channels": {"finance-slack": {"type": "slack", "webhook": "os.environ/SLACK_URL"}}},
    }  # fmt: skip
    (tmp_path / "meterline.yaml").write_text(json.dumps(config))  # JSON is YAML

    with serve(Receiver("slack")) as slack:
        env = {**ENV, "SLACK_URL": slack.url}
        done = meterline("--data-dir", str(layout.root), "analytics", "run", cwd=tmp_path, env=env)
        again = meterline("--data-dir", str(layout.root), "analytics", "run", cwd=tmp_path, env=env)
        skipped = meterline("--data-dir", str(layout.root), "analytics", "run", "--no-alarms", cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr
    assert "alarms: 1 new; 1 sent, 0 failed" in done.stdout
    assert f"  all-daily/{today.isoformat()}/threshold:50" in done.stdout
    assert len(slack.received) == 1  # once per threshold: the second run claims nothing
    assert "alarms: 0 new; 0 sent, 0 failed" in again.stdout
    assert "alarms:" not in skipped.stdout


def test_analytics_run_without_budgets_prints_only_the_marts(tmp_path: Path) -> None:
    (tmp_path / "meterline.yaml").write_text("timezone: UTC\n")  # no budgets
    layout = DataLayout.at(tmp_path / "data")
    write_ledger(layout, sample_records(dt.datetime.now(dt.UTC).date(), days=1))
    run_once(layout)

    done = meterline("--data-dir", str(layout.root), "analytics", "run", cwd=tmp_path)

    assert done.returncode == 0
    assert "alarms" not in done.stdout
