"""The Terraform under infra/terraform, read two ways.

`load` parses a directory's .tf files with python-hcl2 (always available). `render_plan` runs
the real `terraform test` in plan mode with a mocked AWS provider (no account, no network) and
returns each run's JSON plan: every resource's arguments as Terraform computed them (container
definitions, IAM policies, Glue tables, Athena queries) and every output (the rendered
meterline.yaml). It needs the `terraform` binary and the hashicorp/aws provider in a local
plugin directory (`METERLINE_TF_PLUGIN_DIR`, default /opt/tf-plugins); hashicorp/random is
stubbed by `terraform_data`, which only changes how the generated values are made.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "infra" / "terraform"
MODULE = TERRAFORM / "modules" / "meterline"
EXAMPLE = TERRAFORM / "examples" / "default"
PLUGIN_DIR = Path(os.environ.get("METERLINE_TF_PLUGIN_DIR", "/opt/tf-plugins"))


def unquote(value: Any) -> Any:
    """hcl2 keeps a literal string's quotes (`"\"x\""`) and writes expressions as `${...}`."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(directory: Path) -> dict[str, list[Any]]:
    """Every top-level block of the directory's .tf files, by block type (file order)."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as file:
            parsed = hcl2.load(file)
        for kind, blocks in parsed.items():
            merged.setdefault(kind, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def named(blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, body) of `variable "x" {...}`-style blocks."""
    for block in blocks:
        for name, body in block.items():
            yield unquote(name), body


def locals_of(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in load(directory).get("locals", []):
        merged.update({k: v for k, v in block.items() if k != "__is_block__"})
    return merged


def terraform_missing() -> str | None:
    """Why `render_plan` cannot run here, or None."""
    if shutil.which("terraform") is None:
        return "no terraform binary on PATH"
    if not (PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        return f"no hashicorp/aws provider under {PLUGIN_DIR} (METERLINE_TF_PLUGIN_DIR)"
    return None


_RANDOM_PROVIDER = re.compile(r"\n\s*random = \{[^}]*\}")
_RANDOM_RESOURCE = re.compile(r'resource "random_password" "(\w+)" \{(.*?)\n\}', re.S)
_RANDOM_REFERENCE = re.compile(r"random_password\.(\w+)(\[[^\]]*\])?\.result")


def stub_random(tree: Path) -> None:
    """hashicorp/random is not installed here: its passwords become fixed 48-character
    `terraform_data` values (alphanumeric, as the module asks random_password for)."""
    for path in tree.rglob("*.tf"):
        text = _RANDOM_PROVIDER.sub("", path.read_text(encoding="utf-8"))

        def resource(match: re.Match[str]) -> str:
            body = re.sub(r"\n\s*(length|special)\s*=.*", "", match.group(2))
            return f'resource "terraform_data" "random_password_{match.group(1)}" {{{body}\n  input = "{"a1" * 24}"\n}}'

        text = _RANDOM_RESOURCE.sub(resource, text)
        text = _RANDOM_REFERENCE.sub(r"terraform_data.random_password_\1\2.output", text)
        path.write_text(text, encoding="utf-8")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    return subprocess.run(["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def render_plan(workdir: Path, tftest: str) -> dict[str, dict[str, Any]]:
    """Copy the module to `workdir`, add `tftest` as its test file, run `terraform test` and
    return each run's JSON plan by run name. A failed run raises with Terraform's diagnostics."""
    tree = workdir / "meterline"
    shutil.copytree(MODULE, tree, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    stub_random(tree)
    (tree / "tests").mkdir()
    (tree / "tests" / "render.tftest.hcl").write_text(tftest, encoding="utf-8")
    init = run(["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], tree)
    assert init.returncode == 0, init.stderr + init.stdout
    result = run(["test", "-verbose", "-json"], tree)
    plans: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message.get("type") == "test_plan":
            plans[message["@testrun"]] = message["test_plan"]
        elif message.get("@level") == "error":
            problems.append(json.dumps(message.get("diagnostic", message.get("@message")), indent=1))
    assert result.returncode == 0 and not problems, "\n".join(problems) + result.stderr
    return plans


def resources(plan: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The planned arguments of every resource of one type, by address."""
    return {c["address"]: c["change"]["after"] for c in plan["resource_changes"] if c["type"] == kind}


def output(plan: dict[str, Any], name: str) -> Any:
    return plan["output_changes"][name]["after"]
