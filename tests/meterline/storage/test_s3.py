"""The S3 storage target against moto in server mode over real HTTP (never a patched boto3),
with the collector writing through it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.catalog import connect
from collector.compaction import CompactionPolicy, Compactor
from collector.writer import ParquetWriter
from meterline.layout import DataLayout
from meterline.otlp_usage import to_log_record
from meterline.storage import open_target
from meterline.storage.base import StorageTarget
from meterline.storage.s3 import S3Target
from tests.aws import moto_url, s3_bucket, use_moto
from tests.collector.otlp_fixtures import all_files, logs_request, make_usage, running_collector

__all__ = ["moto_url"]  # the session-wide moto server fixture

BUCKET = "ledger"
DAY = dt.date(2025, 3, 14)
PROTOBUF = {"content-type": "application/x-protobuf"}


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    return s3_bucket(moto_url, monkeypatch, BUCKET)


def _target(tmp_path: Path, moto_url: str) -> StorageTarget:
    return open_target(DataLayout.at(tmp_path), f"s3://{BUCKET}/prod", endpoint_url=moto_url)


def _keys(s3: Any) -> list[str]:
    """Object keys, without the empty `folder/` markers pyarrow leaves when it deletes a folder's last file."""
    objects = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(o["Key"] for o in objects if not o["Key"].endswith("/"))


def _post_usage(url: str, *request_ids: str) -> int:
    body = logs_request(*(to_log_record(make_usage(i)) for i in request_ids)).SerializeToString()
    return httpx.post(f"{url}/v1/logs", content=body, headers=PROTOBUF).status_code


def test_the_collector_writes_to_s3_and_the_views_read_it_without_extensions(
    tmp_path: Path, moto_url: str, s3: Any
) -> None:
    local = tmp_path / "local"
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "agent-run", "startTimeUnixNano": "1741944413000000000"}
    traces = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    settings: dict[str, Any] = {"storage_url": f"s3://{BUCKET}/prod", "s3_endpoint_url": moto_url}
    with running_collector(local, **settings) as url:
        assert _post_usage(url, "req-1", "req-2") == 200
        assert httpx.post(f"{url}/v1/traces", content=traces, headers={"content-type": "application/json"}).is_success
        assert httpx.get(f"{url}/health").json()["data_dir"] == f"s3://{BUCKET}/prod"
    with running_collector(local, **settings) as url:
        assert _post_usage(url, "req-1", "req-3") == 200  # req-1 is in the S3 ledger: dropped

    keys = _keys(s3)
    assert len(keys) == 3 and all(k.endswith(".parquet") for k in keys)
    assert sum(k.startswith("prod/usage/date=2025-03-14/part-wal-") for k in keys) == 2
    assert next(k for k in keys if k.startswith("prod/spans/")).startswith("prod/spans/date=2025-03-14/")
    assert [p for p in all_files(local) if p.suffix == ".parquet"] == []  # only the WAL lives locally
    with connect(_target(tmp_path, moto_url)) as con:
        assert con.execute("SELECT count(*), sum(input_tokens), min(date) FROM usage").fetchone() == (3, 3600, DAY)
        assert con.execute("SELECT name, trace_id FROM spans").fetchall() == [("agent-run", "ab" * 16)]
        downloaded = con.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded AND install_mode <> 'STATICALLY_LINKED'"
        ).fetchall()
    assert downloaded == []


def _write(target: StorageTarget, files: int, tag: str) -> None:
    writer = ParquetWriter(target)
    for f in range(files):
        writer.write_sync("usage", [make_usage(f"{tag}{f}-{i}", input_tokens=10).as_row() for i in range(3)])


def _ledger(target: StorageTarget) -> tuple[int, int, int]:
    with connect(target) as con:
        row = con.execute("SELECT count(*), count(DISTINCT request_id), sum(input_tokens) FROM usage").fetchone()
    assert row is not None
    return row


def test_compaction_on_s3_merges_and_an_interrupted_one_is_finished(
    tmp_path: Path, moto_url: str, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _target(tmp_path, moto_url)
    compactor = Compactor(target, CompactionPolicy(min_files=3), today=lambda: DAY)
    _write(target, 4, "a")

    assert compactor.run().files_merged == 4
    assert [k.rsplit("/", 1)[1][:13] for k in _keys(s3)] == ["part-compact-"]
    assert _ledger(target) == (12, 12, 120)

    _write(target, 3, "b")
    assert isinstance(target, S3Target)

    def crash(*args: object) -> None:
        raise ConnectionError("collector killed between the merged copy and the deletes")

    monkeypatch.setattr(target, "_finish", crash)
    with pytest.raises(ConnectionError):
        compactor.run()
    # The first merged file and three new ones were the inputs; they, the note and the new merged
    # file are all there, and readers skip the inputs.
    assert len(_keys(s3)) == 6
    assert _ledger(target) == (21, 21, 210)
    monkeypatch.undo()
    use_moto(monkeypatch, moto_url)

    target.recover()
    assert [k.rsplit("/", 1)[1][:13] for k in _keys(s3)] == ["part-compact-"]
    assert _ledger(target) == (21, 21, 210)


def test_a_note_without_its_merged_file_is_ignored_then_removed(tmp_path: Path, moto_url: str, s3: Any) -> None:
    target = _target(tmp_path, moto_url)
    _write(target, 2, "a")
    names = [k.rsplit("/", 1)[1] for k in _keys(s3)]
    note = {"merged": "part-compact-never-written.parquet", "inputs": names}
    s3.put_object(Bucket=BUCKET, Key="prod/usage/date=2025-03-14/_compaction-x.json", Body=json.dumps(note).encode())

    assert _ledger(target) == (6, 6, 60)
    target.recover()
    assert [k.rsplit("/", 1)[1] for k in _keys(s3)] == names


def test_retention_drops_old_partitions_on_s3(tmp_path: Path, moto_url: str, s3: Any) -> None:
    target = _target(tmp_path, moto_url)
    writer = ParquetWriter(target)
    writer.write_sync("usage", [make_usage("old", date=dt.date(2024, 1, 1)).as_row(), make_usage("new").as_row()])

    report = Compactor(target, CompactionPolicy(retention_days=30), today=lambda: DAY).run()

    assert report.partitions_dropped == ["usage/2024-01-01"]
    assert [k.split("/")[2] for k in _keys(s3)] == ["date=2025-03-14"]
    assert _ledger(target) == (1, 1, 1200)
