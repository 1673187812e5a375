"""Real `meterline` processes: a collector quarantines bad usage records; `analytics run` and
`spend` exit 0 with bad rows on disk and give the good rows' exact totals; `meterline
quarantine` shows what was refused and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from meterline.layout import DataLayout
from meterline.otlp_usage import to_log_record
from tests.collector.otlp_fixtures import current_usage, gateway_id, logs_request
from tests.conftest import free_port
from tests.ledger_fixtures import exact_usd, sample_records, write_ledger

ENV = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}


def meterline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterline", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120
    )


def test_help_works() -> None:
    done = subprocess.run([sys.executable, "-m", "meterline", "quarantine", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--json" in done.stdout


@pytest.mark.e2e
def test_a_collector_process_quarantines_bad_records_and_the_cli_shows_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    collector = subprocess.Popen(
        [sys.executable, "-m", "meterline", "collector", "--data-dir", str(data), "--port", str(port),
         "--grpc-port", "0"],
        cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    records = [
        current_usage(1),
        current_usage(2, cost_usd=math.nan),
        current_usage(3, cost_usd=-2.5),
        current_usage(4, ts_start=dt.datetime(2500, 1, 1, tzinfo=dt.UTC)),
        current_usage(5, agent_id="../x\nbad"),
        current_usage(6),
    ]
    body = logs_request(*(to_log_record(r) for r in records)).SerializeToString()
    try:
        assert collector.stderr is not None
        for line in collector.stderr:
            if "Uvicorn running on" in line:
                break
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/logs", content=body, headers={"content-type": "application/x-protobuf"}
        )
        collector.send_signal(signal.SIGTERM)
        _, log = collector.communicate(timeout=30)
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.wait()

    assert collector.returncode == 0
    assert response.status_code == 200
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 4
    assert "4 usage record(s) quarantined" in log

    listed = meterline("quarantine", "--data-dir", str(data), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    today = dt.datetime.now(dt.UTC).date().isoformat()
    lines = listed.stdout.splitlines()
    assert [line.split() for line in lines[1:-1]] == [
        [today, "collector", "agent_id.format", "1"],
        [today, "collector", "cost_usd.negative", "1"],
        [today, "collector", "cost_usd.not_finite", "1"],
        [today, "collector", "ts_end.in_future", "1"],
        [today, "collector", "ts_start.in_future", "1"],
    ]
    assert lines[-1].startswith("4 quarantined records")
    rows = json.loads(meterline("quarantine", "--data-dir", str(data), "--json", cwd=tmp_path).stdout)
    assert sorted((r["request_id"], r["cost_usd"], r["reasons"]) for r in rows) == [
        (gateway_id(2), "nan", ["cost_usd.not_finite"]),
        (gateway_id(3), -2.5, ["cost_usd.negative"]),
        (gateway_id(4), 0.000387, ["ts_start.in_future", "ts_end.in_future"]),
        (gateway_id(5), 0.000387, ["agent_id.format"]),
    ]

    spend = meterline("spend", "--data-dir", str(data), "--since", "2d", "--format", "json", cwd=tmp_path)
    assert spend.returncode == 0, spend.stderr
    assert json.loads(spend.stdout)["total"] == {
        "requests": 2, "input_tokens": 2400, "output_tokens": 690, "cost_usd": 0.000774
    }  # fmt: skip


@pytest.mark.e2e
def test_analytics_and_spend_exit_0_with_a_bad_row_on_disk_and_bill_the_good_ones(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    layout = DataLayout.at(tmp_path / "data")
    good = sample_records(today, days=2)
    write_ledger(layout, good)
    nan = dataclasses.replace(good[1], request_id="hand-edited-nan", cost_usd=math.nan)
    negative = dataclasses.replace(good[2], request_id="old-negative", input_tokens=-7, cost_usd=-1.0)
    write_ledger(layout, [nan, negative])

    runs = [meterline("analytics", "run", "--data-dir", str(layout.root), cwd=tmp_path) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    assert "Traceback" not in runs[0].stderr + runs[1].stderr
    assert "WARNING analytics.row_checks: analytics: 2 invalid ledger row(s)" in runs[0].stderr
    spend = meterline("spend", "--data-dir", str(layout.root), "--since", "7d", "--format", "json", cwd=tmp_path)
    assert spend.returncode == 0, spend.stderr
    total = json.loads(spend.stdout)["total"]
    assert total["requests"] == len(good) == 48
    assert total["cost_usd"] == exact_usd(good)
    assert total["input_tokens"] == sum(r.input_tokens for r in good)

    rows = json.loads(meterline("quarantine", "--data-dir", str(layout.root), "--json", cwd=tmp_path).stdout)
    assert sorted((r["request_id"], r["source"], r["reasons"]) for r in rows) == [
        ("hand-edited-nan", "analytics", ["cost_usd.not_finite"]),
        ("old-negative", "analytics", ["cost_usd.negative", "input_tokens.negative"]),
    ]
