"""gateway/telemetry/random_ids.py: ids cut from one os.urandom call per 4 KiB, never shared."""

from __future__ import annotations

import os
import re

import pytest

from gateway.telemetry import random_ids
from gateway.telemetry.random_ids import random_hex


@pytest.fixture
def empty_queues() -> None:
    random_ids._forget()


def test_ids_are_lowercase_hex_of_the_asked_size_and_one_system_call_serves_many(
    empty_queues: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.urandom

    def counted(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", counted)
    long_ids = [random_hex(16) for _ in range(600)]
    short_ids = [random_hex(8) for _ in range(600)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in long_ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in short_ids)
    assert len(set(long_ids)) == 600 and len(set(short_ids)) == 600
    # 256 ids of 16 bytes and 512 of 8 bytes per 4 KiB: 3 refills and 2 refills
    assert calls == [4096] * 5


def test_a_forked_child_does_not_reuse_the_parents_queued_ids(empty_queues: None) -> None:
    random_hex(16)  # the parent now holds 255 queued ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, random_hex(16).encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child_id)
    assert child_id != random_hex(16)
