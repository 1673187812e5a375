"""A gateway whose output is not a terminal writes no ANSI escapes (LiteLLM colours some lines)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

KEY = "plain-output-agent-key-0123456789"


def test_a_failing_litellm_call_leaves_no_ansi_escapes_in_piped_output(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens: LiteLLM maps a connection error, the path that prints in colour
    (tmp_path / "meterline.yaml").write_text(
        "model_list:\n"
        "  - model_name: claude\n"
        f"    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_key: sk-x, api_base: http://127.0.0.1:{dead}}}\n"
        f"agents: [{{id: a, team: t, key: {KEY}}}]\n"
        "telemetry: {collector: http://127.0.0.1:9}\n"
    )
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "NO_COLOR", "LITELLM_LOG"))}
    environ["PYTHONUNBUFFERED"] = "1"  # every print reaches the pipe before the kill below
    gateway = subprocess.Popen(
        [sys.executable, "-m", "meterline", "gateway", "--config", "meterline.yaml", "--data-dir", "data",
         "--port", str(port)],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/readiness").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert gateway.poll() is None and time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.1)
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY}"},
            json={"model": "claude", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert reply.status_code >= 500
    finally:
        gateway.kill()  # no 10 s telemetry grace: the output so far is what this test reads
        stdout, stderr = gateway.communicate(timeout=30)
    output = stdout + stderr
    assert b"\x1b[" not in output, output.decode(errors="replace")[-2000:]
