"""checkov over the module: every check passes except the skips the module README lists, each
with its reason, and every listed skip still fails (a fixed one must leave the list)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.infra.terraform import MODULE, REPO

CHECKOV = Path(os.environ.get("METERLINE_CHECKOV", REPO / ".venv-tools" / "bin" / "checkov"))


def readme_skips() -> dict[str, str]:
    """Check id -> reason, from the `## checkov` table of the module README."""
    text = (MODULE / "README.md").read_text(encoding="utf-8")
    section = text.split("## checkov", 1)[1].split("\n## ", 1)[0]
    skips: dict[str, str] = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("CKV"):
            for check in re.findall(r"CKV2?_AWS_\d+", cells[0]):
                skips[check] = cells[2]
    return skips


def test_checkov_fails_only_the_listed_skips() -> None:
    if not CHECKOV.exists():
        message = f"no checkov at {CHECKOV} (make install builds .venv-tools)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI requires it")
        pytest.skip(message)
    result = subprocess.run(
        [str(CHECKOV), "-d", str(MODULE), "--framework", "terraform", "-o", "json", "--quiet", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_BAR": "true"},
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    failed = {check["check_id"] for check in report["results"]["failed_checks"]}
    skips = readme_skips()
    assert all(len(reason) > 20 for reason in skips.values()), "every skip needs its reason"
    assert failed - set(skips) == set(), f"failed and not listed in the module README: {sorted(failed - set(skips))}"
    assert set(skips) - failed == set(), f"listed in the README but passing now: {sorted(set(skips) - failed)}"
    assert summary["passed"] > 250
