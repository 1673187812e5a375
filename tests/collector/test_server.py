from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from meterline.layout import DataLayout
from meterline.otlp_usage import to_log_record
from tests.collector.otlp_fixtures import current_usage, gateway_id, logs_request, read_rows
from tests.conftest import free_port

SERVE = "import sys; from collector.server import serve; from meterline.config import MeterlineConfig; "


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    code = SERVE + f"serve(MeterlineConfig(), {str(data_dir)!r}, port={port})"
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)


def _wait_until_listening(process: subprocess.Popen[str]) -> list[str]:
    assert process.stderr is not None
    lines: list[str] = []
    for line in process.stderr:
        lines.append(line)
        if "Uvicorn running on" in line:
            return lines
    raise AssertionError(f"collector exited before listening: {''.join(lines)}")


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_writes_then_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    process = _start(tmp_path / "data", port)
    try:
        lines = _wait_until_listening(process)
        body = logs_request(to_log_record(current_usage(1))).SerializeToString()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/logs", content=body, headers={"content-type": "application/x-protobuf"}
        )
        assert response.status_code == 200
        process.send_signal(sig)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0
    started = [line for line in lines if "data lands in" in line]
    assert len(started) == 1 and str((tmp_path / "data").resolve()) in started[0]
    assert "Traceback" not in "".join(lines) + rest
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path / "data"), "usage")] == [gateway_id(1)]
