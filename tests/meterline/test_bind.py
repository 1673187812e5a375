"""The bind rule for servers without authentication: loopback, or an explicit allow flag."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from meterline.bind import is_loopback, require_loopback_or_allowed
from meterline.cli.main import main
from meterline.config import ConfigError


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("192.168.0.7", False),
        ("no-such-host.invalid", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _check(host: str, allowed: bool) -> None:
    require_loopback_or_allowed(
        host, server="thing", risk="may do things", remedy="add a login", setting="thing.allow", allowed=allowed,
        source="m.yaml",
    )  # fmt: skip


def test_a_non_loopback_address_is_refused_naming_the_setting() -> None:
    _check("127.0.0.1", allowed=False)
    with pytest.raises(ConfigError) as refused:
        _check("0.0.0.0", allowed=False)
    assert refused.value.field == "thing.allow"
    assert str(refused.value) == (
        "m.yaml: thing.allow: refusing to serve the thing on 0.0.0.0, not a loopback address, without "
        "authentication (anyone who could reach it may do things); add a login, bind 127.0.0.1, or set "
        "thing.allow: true"
    )


def test_the_allow_flag_lets_it_bind_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _check("0.0.0.0", allowed=True)
    assert [r.getMessage() for r in caplog.records] == [
        "UNAUTHENTICATED thing on 0.0.0.0 (thing.allow: true): anyone who can reach it may do things"
    ]


class Launched(Exception):
    """Raised by the stand-in for `os.execve`, which never returns."""


def test_the_dashboard_binds_every_interface_only_with_its_allow_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    launched: list[list[str]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        launched.append(argv)
        raise Launched

    monkeypatch.setattr(os, "execve", execve)
    config = tmp_path / "meterline.yaml"
    config.write_text("storage: {data_dir: ./data}\n")
    assert main(["dashboard", "--config", str(config), "--host", "0.0.0.0"]) == 2
    assert "dashboard.allow_unauthenticated" in capsys.readouterr().err
    assert launched == []

    config.write_text("storage: {data_dir: ./data}\ndashboard: {allow_unauthenticated: true}\n")
    with pytest.raises(Launched):
        main(["dashboard", "--config", str(config), "--host", "0.0.0.0"])
    assert launched[0][launched[0].index("--server.address") + 1] == "0.0.0.0"
