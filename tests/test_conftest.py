"""tests/conftest.py: under CI (CI=true) a native extension that failed to build fails its tests
instead of skipping them; locally they skip with the reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NATIVE_EXTENSIONS, require_native

ROOT = Path(__file__).parents[1]
ABSENT = "meterline._no_such_native"
NOT_BUILT = f"native extension not built: {ABSENT} (No module named '{ABSENT}')"
NEEDS_ABSENT = f"""
import pytest

pytestmark = pytest.mark.native("{ABSENT}")


def test_decodes() -> None:
    pass
"""


def test_a_missing_extension_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as caught:
        require_native(NATIVE_EXTENSIONS[0], ABSENT)
    assert str(caught.value) == NOT_BUILT


def test_a_missing_extension_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as caught:
        require_native(ABSENT)
    assert str(caught.value) == f"{NOT_BUILT}; CI requires it (a failed build must not skip its tests)"


def _pytest_run(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_needs_native.py"
    test_file.write_text(NEEDS_ABSENT)
    environ = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    command = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
               "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", "-rfs", str(test_file)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=environ, timeout=120)


def test_a_ci_run_with_an_extension_missing_fails(tmp_path: Path) -> None:
    done = _pytest_run(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{NOT_BUILT}; CI requires it" in done.stdout
    assert "1 error" in done.stdout.splitlines()[-1]


def test_a_local_run_with_an_extension_missing_skips(tmp_path: Path) -> None:
    done = _pytest_run(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert NOT_BUILT in done.stdout
    assert "1 skipped" in done.stdout.splitlines()[-1]


def test_every_extension_setup_py_builds_is_required_by_tests() -> None:
    built = re.findall(r'Extension\("([\w.]+)"', (ROOT / "setup.py").read_text())
    assert sorted(built) == sorted(NATIVE_EXTENSIONS)
    markers = "".join(
        path.read_text() for path in (ROOT / "tests").rglob("test_*.py") if path.name != "test_conftest.py"
    )
    required = set(re.findall(r"pytest\.mark\.native\(([^)]*)\)", markers))
    named = {name for args in required for name in re.findall(r'"([\w.]+)"', args)}
    assert named == set(NATIVE_EXTENSIONS)
