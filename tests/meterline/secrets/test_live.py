"""LiveSecret: refresh keeps the last good value on failure, single-flight refresh_now."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from meterline.secrets import LiveSecret, SecretResolutionError, SecretVersion, parse_reference
from meterline.secrets.base import now
from meterline.secrets.reference import Reference

REFERENCE = parse_reference("aws-secretsmanager://prod/key?refresh=60")


class ScriptedBackend:
    """Answers with `value`/`version`, or raises when `fail` is set; `gate` holds fetches back."""

    name = "aws-secretsmanager"

    def __init__(self) -> None:
        self.value, self.version, self.fail = "sk-live-one", "v1", False
        self.fetches = 0
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def fetch(self, reference: Reference) -> SecretVersion:
        self.fetches += 1
        self.waiting.set()
        assert self.gate.wait(timeout=30)
        if self.fail:
            raise reference.error("AccessDeniedException: not allowed")
        return SecretVersion(self.value, self.version, now())


def live(backend: ScriptedBackend) -> LiveSecret:
    return LiveSecret(REFERENCE, backend, backend.fetch(REFERENCE), REFERENCE.refresh_seconds)


def test_refresh_picks_up_a_new_version() -> None:
    backend = ScriptedBackend()
    secret = live(backend)
    backend.value, backend.version = "sk-live-two", "v2"
    fresh = asyncio.run(secret.refresh_now())
    assert (fresh.value, fresh.version, secret.version, secret.reveal()) == ("sk-live-two", "v2", "v2", "sk-live-two")
    assert secret.refresh_seconds == 60.0


def test_a_failed_refresh_keeps_the_last_good_value_and_degrades(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    backend = ScriptedBackend()
    secret = live(backend)
    backend.fail = True
    kept = asyncio.run(secret.refresh_now())
    assert (kept.value, secret.failures, secret.degraded) == ("sk-live-one", 1, True)
    status = secret.status()
    assert (status.reference, status.backend, status.version, status.failures, status.error) == (
        "aws-secretsmanager://prod/key?refresh=60",
        "aws-secretsmanager",
        "v1",
        1,
        "AccessDeniedException: not allowed",
    )
    backend.fail = False
    asyncio.run(secret.refresh_now())
    assert (secret.failures, secret.degraded) == (1, False)
    assert "sk-live-one" not in caplog.text
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


def test_refresh_now_is_single_flight() -> None:
    backend = ScriptedBackend()
    secret = live(backend)

    async def many() -> list[SecretVersion]:
        backend.gate.clear()
        backend.waiting.clear()
        backend.value, backend.version = "sk-live-two", "v2"
        calls = [asyncio.create_task(secret.refresh_now()) for _ in range(50)]
        await asyncio.to_thread(backend.waiting.wait, 30)
        backend.gate.set()
        return await asyncio.gather(*calls)

    results = asyncio.run(many())
    assert {r.version for r in results} == {"v2"}
    assert (backend.fetches, secret.refreshes) == (2, 1)  # the first fetch, then one refresh


def test_a_caller_holding_a_stale_value_gets_the_newer_one_without_a_fetch() -> None:
    backend = ScriptedBackend()
    secret = live(backend)
    backend.value, backend.version = "sk-live-two", "v2"
    asyncio.run(secret.refresh_now())
    again = asyncio.run(secret.refresh_now(stale="sk-live-one"))
    assert (again.version, secret.refreshes) == ("v2", 1)


def test_a_literal_is_never_refreshed() -> None:
    reference = parse_reference("sk-literal")
    secret = LiveSecret(reference, ScriptedBackend(), SecretVersion("sk-literal", None, now()), None)
    assert asyncio.run(secret.refresh_now()).value == "sk-literal"
    assert secret.refreshes == 0
    assert "sk-literal" not in repr(secret) and "sk-literal" not in repr(secret.current)


def test_backend_errors_never_escape_the_refresh() -> None:
    class Broken(ScriptedBackend):
        def fetch(self, reference: Reference) -> SecretVersion:
            if self.fetches:
                raise RuntimeError("boom sk-live-one")
            return super().fetch(reference)

    secret = live(Broken())
    assert asyncio.run(secret.refresh_now()).value == "sk-live-one"
    assert secret.last_error == "unexpected RuntimeError"


def test_resolution_error_message_is_exact() -> None:
    error = SecretResolutionError("vault://secret/x#k", "vault", "no secret or version at secret/data/x (HTTP 404)")
    assert str(error) == (
        "cannot resolve secret reference 'vault://secret/x#k' (vault): no secret or version at secret/data/x (HTTP 404)"
    )


def test_listeners_hear_a_new_value_once_and_a_broken_one_stops_no_other(caplog: pytest.LogCaptureFixture) -> None:
    backend = ScriptedBackend()
    secret = live(backend)
    heard: list[tuple[str, str]] = []

    def broken(new: SecretVersion, old: SecretVersion) -> None:
        raise RuntimeError(new.value)

    secret.on_change(broken)
    secret.on_change(lambda new, old: heard.append((new.value, old.value)))

    async def scenario() -> None:
        await secret.refresh_now()  # same value: nobody is told
        backend.value, backend.version = "sk-live-two", "v2"
        await secret.refresh_now()
        backend.version = "v3"  # a new version with the same value: nothing to rebuild
        await secret.refresh_now()

    asyncio.run(scenario())
    assert heard == [("sk-live-two", "sk-live-one")]
    assert "a component could not take the new version (RuntimeError)" in caplog.text
    assert "sk-live-two" not in caplog.text


def test_refresh_soon_starts_at_most_one_refresh_per_interval() -> None:
    backend = ScriptedBackend()
    secret = live(backend)

    async def scenario() -> int:
        backend.value = "sk-live-two"
        for _ in range(5):
            secret.refresh_soon(60)
            await asyncio.sleep(0.05)
        return backend.fetches

    assert asyncio.run(scenario()) == 2  # the first fetch, then one refresh
    assert secret.reveal() == "sk-live-two"


def test_replaced_values_are_remembered_newest_first_for_scrubbing() -> None:
    """`previous_values`: what error scrubbing masks besides the current value (the last three)."""
    backend = ScriptedBackend()
    secret = live(backend)
    assert len(secret.previous_values) == 0

    async def rotate_through(*values: str) -> None:
        for value in values:
            backend.value = value
            await secret.refresh_now()

    asyncio.run(rotate_through("sk-live-two", "sk-live-two", "sk-live-three", "sk-live-one", "sk-live-four"))
    assert secret.reveal() == "sk-live-four"
    # An unchanged refresh adds nothing; a value coming back is not listed twice; at most three.
    assert list(secret.previous_values) == ["sk-live-one", "sk-live-three", "sk-live-two"]
