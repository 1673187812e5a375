from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from gateway.telemetry.exporter import TelemetryExporter
from gateway.telemetry.spool import Spool, SpoolFull, claim_directory


def _payloads(n: int, start: int = 0) -> list[bytes]:
    return [f"record-{i}".encode() for i in range(start, start + n)]


def test_records_are_read_in_order_and_acked_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**6, segment_bytes=100)
    assert spool.open() == 0
    spool.append(_payloads(5))
    spool.append(_payloads(5, 5))
    first, cursor = spool.read(4)
    assert first == _payloads(4)
    spool.ack(cursor, 4)
    rest, cursor = spool.read(100)
    assert rest == _payloads(6, 4)
    spool.ack(cursor, 6)
    assert spool.unacked_records == 0
    assert [p.name for p in spool.directory.glob("seg-*.log")] == ["seg-000000000002.log"]  # only the empty active one
    spool.close()


def test_a_failed_export_rewinds_and_a_restart_resends_what_is_unacked(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**6, segment_bytes=64)
    spool.open()
    spool.append(_payloads(8))
    _, cursor = spool.read(3)
    spool.ack(cursor, 3)
    spool.read(3)
    spool.rewind()
    assert spool.read(2)[0] == _payloads(2, 3)
    spool.close()

    reopened = Spool(tmp_path, max_bytes=10**6)
    assert reopened.open() == 5
    assert reopened.read(100)[0] == _payloads(5, 3)
    reopened.close()


def test_a_torn_tail_is_cut_with_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.open()
    spool.append(_payloads(3))
    spool.close()
    segment = next(spool.directory.glob("seg-*.log"))
    with open(segment, "ab") as handle:
        handle.write(b"\x10\x00\x00\x00garbage")
    reopened = Spool(tmp_path, max_bytes=10**6)
    with caplog.at_level(logging.WARNING):
        assert reopened.open() == 3
    assert sum("truncated or corrupt tail" in r.getMessage() for r in caplog.records) == 1
    assert reopened.read(10)[0] == _payloads(3)
    reopened.close()


def test_the_cap_refuses_appends_after_warning_at_half_and_four_fifths(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, max_bytes=200)
    spool.open()
    with caplog.at_level(logging.WARNING):
        for i in range(10):
            spool.append(_payloads(1, i))  # 16 bytes each
        with pytest.raises(SpoolFull):
            spool.append(_payloads(5))
    fills = [r.getMessage().split(" full")[0] for r in caplog.records if "% full" in r.getMessage()]
    assert fills == ["telemetry spool is 50%", "telemetry spool is 80%"]
    assert (spool.size_bytes, spool.dropped) == (160, 5)
    spool.close()


def test_two_processes_never_share_a_spool_directory(tmp_path: Path) -> None:
    (first, fd1), (second, fd2) = claim_directory(tmp_path), claim_directory(tmp_path)
    assert first != second
    os.close(fd1)
    third, fd3 = claim_directory(tmp_path)
    assert third == first
    os.close(fd2)
    os.close(fd3)


def test_spooled_records_are_wrapped_into_a_valid_export_request(tmp_path: Path) -> None:
    exporter = TelemetryExporter("http://127.0.0.1:1", {"service.name": "gw"}, spool=Spool(tmp_path, 1))
    from meterline.otlp_usage import to_log_record
    from tests.collector.otlp_fixtures import make_usage

    records = [to_log_record(make_usage(f"req-{i}")) for i in range(3)]
    body = exporter._wrap_logs([r.SerializeToString() for r in records])
    parsed = ExportLogsServiceRequest.FromString(body)
    assert list(parsed.resource_logs[0].scope_logs[0].log_records) == records
    assert parsed.resource_logs[0].scope_logs[0].scope.name == "meterline.gateway"
    assert parsed.resource_logs[0].resource.attributes[0].value.string_value == "gw"


def test_a_backlog_beyond_the_read_window_is_read_in_order_once(tmp_path: Path) -> None:
    """Reads look at 1 MiB at a time: frames cut by the window's edge come in the next read, and
    a frame bigger than the window is still read whole."""
    spool = Spool(tmp_path, max_bytes=10**8, segment_bytes=10**8)
    spool.open()
    small = [f"record-{i:05d}-".encode() + b"x" * 700 for i in range(3000)]  # ~2.2 MB
    huge = b"h" * (1024 * 1024 + 5)
    spool.append(small[:1500])
    spool.append([huge])
    spool.append(small[1500:])
    seen: list[bytes] = []
    while True:
        payloads, cursor = spool.read(512)
        if not payloads:
            break
        seen.extend(payloads)
        spool.ack(cursor, len(payloads))
    assert seen == [*small[:1500], huge, *small[1500:]]
    assert spool.unacked_records == 0
    spool.close()


def test_written_records_survive_a_killed_process_and_are_sent_once_synced(tmp_path: Path) -> None:
    """`write` puts the frames in the file at once (no fsync): a process SIGKILLed right after
    loses none of them. The sender reads only what `sync` made durable."""
    script = (
        "import os, sys; from pathlib import Path; from gateway.telemetry.spool import Spool\n"
        "spool = Spool(Path(sys.argv[1]), 10**6); spool.open()\n"
        "spool.write([b'record-0', b'record-1']); spool.write([b'record-2'])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    assert killed.returncode == -9
    spool = Spool(tmp_path, max_bytes=10**6)
    assert spool.open() == 3
    assert spool.read(10)[0] == _payloads(3)
    spool.write(_payloads(2, 3))
    assert (spool.unsynced_records, spool.read(10)[0]) == (2, [])
    assert spool.sync() == 2
    assert (spool.unsynced_records, spool.read(10)[0]) == (0, _payloads(2, 3))
    spool.close()
