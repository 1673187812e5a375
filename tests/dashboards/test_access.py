"""Access: a password from a secret reference (resolved by the page, compared in constant time,
never shown), the bind rule without a login, and the viewer's chrome `meterline dashboard` asks
Streamlit for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards import access
from meterline.cli.main import main
from meterline.layout import DataLayout
from tests.dashboards.conftest import APP, build_ledger

PASSWORD = "correct horse battery staple"


def test_password_matches_only_the_password() -> None:
    assert access.password_matches(PASSWORD, PASSWORD)
    assert not access.password_matches("correct horse", PASSWORD)
    assert not access.password_matches("", "")


def test_the_pages_need_the_password_from_its_reference(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    build_ledger(layout, days=2)
    secret = tmp_path / "dashboard-password"
    secret.write_text(PASSWORD)
    monkeypatch.setenv("METERLINE_DATA_DIR", str(layout.root))
    monkeypatch.setenv(access.PASSWORD_REF_ENV, f"file://{secret}")
    monkeypatch.setattr(access, "_cached", None)
    app = AppTest.from_file(APP, default_timeout=60).run()

    assert [t.value for t in app.title] == ["Meterline"]
    assert not app.metric and not app.dataframe

    app.text_input[0].input("wrong")
    app.button[0].click().run()
    assert [e.value for e in app.error] == ["Wrong password."]
    assert not app.metric

    app.text_input[0].input(PASSWORD)
    app.button[0].click().run()
    assert [t.value for t in app.title] == ["Overview"]
    assert app.metric
    assert PASSWORD not in repr(app._tree)  # never drawn, not even in a widget's value


class Launched(Exception):
    """Raised by the stand-in for `os.execve`, which never returns."""


def _launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml: str, *args: str) -> tuple[list[str], dict[str, str]]:
    launched: list[tuple[list[str], dict[str, str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        launched.append((argv, env))
        raise Launched

    monkeypatch.setattr(os, "execve", execve)
    config = tmp_path / "meterline.yaml"
    config.write_text(yaml)
    with pytest.raises(Launched):
        main(["dashboard", "--config", str(config), *args])
    return launched[0]


def test_with_a_password_it_may_bind_any_address_and_gets_the_reference_not_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_PASSWORD", PASSWORD)
    yaml = "dashboard: {password: os.environ/DASHBOARD_PASSWORD}\nstorage: {data_dir: ./data}\n"

    argv, env = _launch(tmp_path, monkeypatch, yaml, "--host", "0.0.0.0")

    assert env[access.PASSWORD_REF_ENV] == "os.environ/DASHBOARD_PASSWORD"
    assert all(PASSWORD not in value for key, value in env.items() if key != "DASHBOARD_PASSWORD")
    assert PASSWORD not in " ".join(argv)
    flags = dict(zip(argv[5::2], argv[6::2], strict=False))
    assert flags["--server.address"] == "0.0.0.0"
    assert flags["--client.toolbarMode"] == "viewer"  # no Deploy button, no developer menu
    assert flags["--client.showErrorDetails"] == "none"
    assert flags["--server.showEmailPrompt"] == "false"
    assert flags["--global.developmentMode"] == "false"


def test_without_a_login_it_stays_on_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "meterline.yaml"
    config.write_text("storage: {data_dir: ./data}\n")

    assert main(["dashboard", "--config", str(config), "--host", "0.0.0.0"]) == 2
    assert "dashboard.password" in capsys.readouterr().err

    argv, env = _launch(tmp_path, monkeypatch, "storage: {data_dir: ./data}\n")
    assert access.PASSWORD_REF_ENV not in env
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"


def test_with_oidc_the_pages_wait_for_the_identity_providers_login(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METERLINE_DATA_DIR", str(layout.root))
    monkeypatch.setenv(access.OIDC_ENV, "1")

    app = AppTest.from_file(APP, default_timeout=60).run()

    assert [t.value for t in app.title] == ["Meterline"]
    assert [b.label for b in app.button] == ["Log in"]
    assert not app.metric and not app.dataframe
