from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meterline.secrets import SecretResolutionError, parse_reference
from meterline.secrets.file import FileBackend


def test_reads_a_mounted_secret_without_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "openai"
    path.write_text("sk-file-value\n")
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    found = FileBackend().fetch(parse_reference(f"file://{path}"))
    assert (found.value, found.version) == ("sk-file-value", "1700000000000000000")


def test_field_of_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "all.json"
    path.write_text(json.dumps({"openai": "sk-file-openai", "anthropic": "sk-file-anthropic"}))
    assert FileBackend().fetch(parse_reference(f"file://{path}#anthropic")).value == "sk-file-anthropic"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing", None, "no file at {path}"),
        ("empty", "\n", "{path} is empty"),
        ("plain", "sk-file-plain", "the secret is not a JSON object, so it has no field 'k'"),
    ],
)
def test_errors(tmp_path: Path, name: str, content: str | None, reason: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    text = f"file://{path}" + ("#k" if name == "plain" else "")
    with pytest.raises(SecretResolutionError) as caught:
        FileBackend().fetch(parse_reference(text))
    assert str(caught.value) == f"cannot resolve secret reference {text!r} (file): {reason.format(path=path)}"
