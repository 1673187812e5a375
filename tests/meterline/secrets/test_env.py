from __future__ import annotations

import pytest

from meterline.secrets import SecretResolutionError, parse_reference
from meterline.secrets.env import EnvBackend


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_TEST_SECRET", "sk-env-value")
    found = EnvBackend().fetch(parse_reference("os.environ/METERLINE_TEST_SECRET"))
    assert (found.value, found.version) == ("sk-env-value", None)


def test_unset_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERLINE_TEST_SECRET", raising=False)
    with pytest.raises(SecretResolutionError) as caught:
        EnvBackend().fetch(parse_reference("os.environ/METERLINE_TEST_SECRET"))
    assert str(caught.value) == (
        "cannot resolve secret reference 'os.environ/METERLINE_TEST_SECRET' (env): "
        "environment variable METERLINE_TEST_SECRET is not set or empty"
    )
