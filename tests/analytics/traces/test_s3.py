"""The trace explorer over an S3 ledger (moto over real HTTP): the same traces, waterfalls and
refusals as over a local data dir, and no local Parquet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analytics.traces.ledger import connect
from analytics.traces.read_only import WriteRefused, run
from analytics.traces.search import TraceQuery, search_traces
from analytics.traces.waterfall import load_trace, resolve_trace_id
from meterline.layout import DataLayout
from meterline.storage import open_target
from tests.aws import moto_url, s3_bucket
from tests.trace_ledger import REQUEST_B, TRACE_A, TRACE_B, TRACE_C, TRACE_D, build_trace_ledger

__all__ = ["moto_url"]  # the session-wide moto server fixture

BUCKET = "ledger"


def test_traces_read_from_s3(tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s3: Any = s3_bucket(moto_url, monkeypatch, BUCKET)
    url = f"s3://{BUCKET}/prod"
    build_trace_ledger(tmp_path / "local", storage_url=url, s3_endpoint_url=moto_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.startswith("prod/spans/") for k in keys) and any(k.startswith("prod/usage/") for k in keys)
    assert not list((tmp_path / "local").rglob("*.parquet"))

    with connect(open_target(DataLayout.at(tmp_path / "local"), url, endpoint_url=moto_url)) as con:
        assert [r["trace_id"] for r in search_traces(con, TraceQuery())] == [TRACE_D, TRACE_B, TRACE_A, TRACE_C]
        assert resolve_trace_id(con, REQUEST_B) == TRACE_B
        trace = load_trace(con, TRACE_A)
        assert trace is not None
        assert [(s.depth, s.name, s.role) for s in trace.spans] == [
            (0, "handle ticket", None), (1, "call llm", None), (2, "chat gpt-4o-mini", None),
            (3, "chat gpt-4o-mini", "attempt 1"), (3, "chat gpt-4o-mini", "retry"), (1, "post reply", None),
        ]  # fmt: skip
        assert trace.spans[2].usage is not None and trace.spans[2].usage["cost_usd"] == 0.000387
        with pytest.raises(WriteRefused):
            run(con, f"COPY (SELECT * FROM usage) TO '{tmp_path / 'out.csv'}'")


def test_the_cli_reads_an_s3_ledger(tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_bucket(moto_url, monkeypatch, BUCKET)
    url = f"s3://{BUCKET}/prod"
    build_trace_ledger(tmp_path / "local", storage_url=url, s3_endpoint_url=moto_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    env["METERLINE_STORAGE__S3_ENDPOINT_URL"] = moto_url
    env["METERLINE_STORAGE__LOCAL_DIR"] = str(tmp_path / "local")

    def meterline(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "meterline", "--data-dir", url, *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    found = meterline("traces", "--since", "all", "--format", "json")
    assert found.returncode == 0, found.stderr
    assert [r["trace_id"] for r in json.loads(found.stdout)] == [TRACE_D, TRACE_B, TRACE_A, TRACE_C]
    waterfall = meterline("trace", REQUEST_B)
    assert waterfall.returncode == 0 and "[meterline-gateway, CLIENT, fallback]" in waterfall.stdout
    refused = meterline("sql", "DELETE FROM usage")
    assert refused.returncode == 2 and "DELETE statements are refused" in refused.stderr
