"""Every `yaml` block in README.md, docs/ and infra/ parses as meterline.yaml.

A block that is some other file (a docker compose file, a Kubernetes manifest) says so on its
first line, `# file: <name>`; it must still be valid YAML but is not checked against the config
model. Every other `yaml` or `yml` block is a meterline.yaml example, so a renamed or misplaced
setting in the docs fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from meterline.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>ya?ml)\b[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.MULTILINE | re.DOTALL)
OTHER_FILE = re.compile(r"#\s*file:\s*(?P<name>\S+)")


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "infra").rglob("*.md"))]


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            indent = len(match["indent"])
            body = "\n".join(row[indent:] for row in match["body"].splitlines())
            found.append((f"{path.relative_to(ROOT)}:{line}", body))
    return found


BLOCKS = _blocks()


def test_the_docs_have_yaml_examples() -> None:
    places = {where.split(":")[0] for where, _ in BLOCKS}
    assert {"README.md", "docs/architecture.md"} <= places


@pytest.mark.parametrize(("where", "body"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_a_yaml_example_parses_against_the_config_model(where: str, body: str) -> None:
    first = body.lstrip().splitlines()[0] if body.strip() else ""
    other = OTHER_FILE.match(first)
    if other is not None and other["name"] != "meterline.yaml":
        assert yaml.safe_load(body) is not None, where
        return
    parse_config(body, where, environ={})
