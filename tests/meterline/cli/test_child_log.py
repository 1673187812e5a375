"""`ChildLog`: a child's stderr relayed unchanged, and its cause of failure found in it."""

from __future__ import annotations

import io
import os

import pytest

from meterline.cli.child_log import ChildLog


def relayed(text: str) -> tuple[ChildLog, bytes]:
    read, write = os.pipe()
    out = io.BytesIO()
    with os.fdopen(write, "wb") as sink:
        log = ChildLog("gateway", os.fdopen(read, "rb"), out)
        sink.write(text.encode())
    log.join()
    return log, out.getvalue()


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (
            "2026-12-08 00:28:07,268 INFO uvicorn.error: Application startup complete.\n"
            "2026-12-08 00:28:07,272 ERROR uvicorn.error: [Errno 98] error while attempting to bind on address "
            "('127.0.0.1', 4000): address already in use\n"
            "2026-12-08 00:28:07,323 INFO gateway.app: gateway stopped: 0 telemetry items undelivered\n",
            "[Errno 98] error while attempting to bind on address ('127.0.0.1', 4000): address already in use",
        ),
        (
            "Traceback (most recent call last):\n"
            '  File "x.py", line 1, in <module>\n'
            "ModuleNotFoundError: No module named 'litellm'\n",
            "ModuleNotFoundError: No module named 'litellm'",
        ),
        (
            "meterline: error: meterline.yaml: agents[0].team: field required\n",
            "meterline.yaml: agents[0].team: field required",
        ),
        ("ERROR:    [Errno 13] permission denied\n", "[Errno 13] permission denied"),
        ("something odd\nKilled\n\n", "Killed"),
        ("", None),
    ],
)
def test_the_cause_is_the_childs_last_error(text: str, cause: str | None) -> None:
    log, out = relayed(text)

    assert out == text.encode()  # relayed byte for byte
    assert log.cause() == cause
