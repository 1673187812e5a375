"""The Terraform's own hygiene: it parses, every variable is typed and described, secrets have
no defaults, the example uses only what the module declares, the module configures no provider,
and (rendered) every resource is named `<tenant>-meterline-<env>[-suffix]` and tagged."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.infra.conftest import ENV, TENANT, Deployment, require_terraform
from tests.infra.terraform import EXAMPLE, MODULE, PLUGIN_DIR, TERRAFORM, load, named, run, stub_random, unquote

SECRET_NAME = re.compile(r"secret|password|token|private_key")
REQUIRED_TAGS = {"Tenant": TENANT, "Environment": ENV, "Application": "meterline", "ManagedBy": "terraform"}


def variables(directory: Path) -> dict[str, dict[str, Any]]:
    return dict(named(load(directory).get("variable", [])))


@pytest.mark.parametrize("path", sorted(TERRAFORM.rglob("*.tf")), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    with path.open(encoding="utf-8") as file:
        assert hcl2.load(file)


@pytest.mark.parametrize("directory", [MODULE, EXAMPLE], ids=["module", "example"])
def test_every_variable_has_a_type_and_a_description(directory: Path) -> None:
    for name, body in variables(directory).items():
        assert "type" in body, f"variable {name} has no type"
        assert unquote(body.get("description", "")).strip(), f"variable {name} has no description"


@pytest.mark.parametrize("directory", [MODULE, EXAMPLE], ids=["module", "example"])
def test_no_secret_variable_has_a_default(directory: Path) -> None:
    for name, body in variables(directory).items():
        holds_secret = body.get("sensitive") is True or (
            SECRET_NAME.search(name) and not name.endswith(("_arn", "_arns"))
        )
        if holds_secret:
            assert "default" not in body, f"variable {name} holds a secret and must not have a default"
            assert body.get("sensitive") is True, f"variable {name} holds a secret and must be sensitive"


def test_every_output_is_described() -> None:
    for directory in (MODULE, EXAMPLE):
        for name, body in named(load(directory).get("output", [])):
            assert unquote(body.get("description", "")).strip(), f"output {name} has no description"


def test_the_module_configures_no_provider() -> None:
    parsed = load(MODULE)
    assert "provider" not in parsed, "callers configure providers (for_each over tenants, aliases, assume-role)"
    (terraform,) = parsed["terraform"]
    assert {"aws", "random"} <= set(terraform["required_providers"][0])


def test_the_example_uses_only_what_the_module_declares() -> None:
    declared = variables(MODULE)
    outputs = {name for name, _ in named(load(MODULE)["output"])}
    (call,) = [body for name, body in named(load(EXAMPLE)["module"]) if name == "meterline"]
    given = {k for k in call if k not in ("source", "__is_block__")}
    assert given <= set(declared), f"undeclared module inputs: {given - set(declared)}"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= given, f"required module inputs missing: {required - given}"
    text = "".join(path.read_text(encoding="utf-8") for path in EXAMPLE.glob("*.tf"))
    used = set(re.findall(r"module\.meterline\.(\w+)", text))
    assert used <= outputs, f"undeclared module outputs: {used - outputs}"
    example_variables = set(variables(EXAMPLE))
    assert set(re.findall(r"\bvar\.(\w+)", text)) <= example_variables


def test_the_example_validates(tmp_path: Path) -> None:
    require_terraform()
    shutil.copytree(TERRAFORM, tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform*"))
    stub_random(tmp_path / "terraform")
    example = tmp_path / "terraform" / "examples" / "default"
    init = run(["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], example)
    assert init.returncode == 0, init.stderr
    validate = run(["validate", "-no-color"], example)
    assert validate.returncode == 0, validate.stderr + validate.stdout
    formatted = run(["fmt", "-check", "-recursive", "-no-color", str(TERRAFORM)], example)
    assert formatted.returncode == 0, f"terraform fmt would change: {formatted.stdout}"


# Names that live inside another resource (a cluster's services, a database's tables, a role's
# inline policies, a workgroup's queries) need not repeat the tenant and environment.
SCOPED = {
    "aws_ecs_service",
    "aws_glue_catalog_table",
    "aws_iam_role_policy",
    "aws_athena_named_query",
    "aws_appautoscaling_policy",
}
ENGINE_FAMILY = {"aws_db_parameter_group", "aws_elasticache_parameter_group"}  # `family` is postgres16, valkey7
NAME_ARGUMENTS = ("name", "identifier", "family", "replication_group_id", "bucket", "creation_token")


def configured_arguments() -> set[tuple[str, str, str]]:
    """(type, name, argument) of every argument the module's resources set themselves."""
    found: set[tuple[str, str, str]] = set()
    for block in load(MODULE).get("resource", []):
        for kind, instances in block.items():
            for name, body in instances.items():
                found.update((unquote(kind), unquote(name), argument) for argument in body)
    return found


def test_every_name_carries_tenant_and_env(deployment: Deployment) -> None:
    prefix = f"{TENANT}-meterline-{ENV}"
    configured = configured_arguments()
    for change in deployment.plan["resource_changes"]:
        after = change["change"]["after"] or {}
        for argument in NAME_ARGUMENTS:
            if (change["type"], change["name"], argument) not in configured:
                continue  # computed by AWS (mocked here), not named by the module
            if argument == "bucket" and change["type"] != "aws_s3_bucket":
                continue  # a reference to the bucket, checked where it is named
            value = after.get(argument)
            if not isinstance(value, str) or change["type"] in SCOPED:
                continue
            if argument == "family" and change["type"] in ENGINE_FAMILY:
                continue
            ok = (
                value.startswith(prefix)
                or (value.startswith(("alias/", "aws-waf-logs-", "/meterline/")) and prefix in value)
                or value == f"{TENANT}_meterline_{ENV}"
                or (change["type"] == "aws_route53_record")
            )
            assert ok, f"{change['address']}.{argument} = {value!r} is not named after {prefix}"


def test_every_taggable_resource_is_tagged(deployment: Deployment) -> None:
    for change in deployment.plan["resource_changes"]:
        after = change["change"]["after"] or {}
        if "tags" not in after:
            continue
        tags = after["tags"] or {}
        missing = {k: v for k, v in REQUIRED_TAGS.items() if tags.get(k) != v}
        assert not missing, f"{change['address']} lacks tags {missing}"


def test_plaintext_needs_an_explicit_switch(deployment: Deployment) -> None:
    # The runs `plaintext_alb_refused` and `plaintext_collector_refused` pass only when plan fails
    # the precondition (expect_failures); `plaintext_alb_allowed` plans an HTTP listener.
    assert {"plaintext_alb_refused", "plaintext_alb_allowed", "plaintext_collector_refused"} <= set(deployment.plans)
    # and `owned_section_refused`: var.config may not replace a section the module renders
    # (telemetry.capture_content stays false)
    assert "owned_section_refused" in deployment.plans
    listeners = [
        c["change"]["after"]
        for c in deployment.plans["plaintext_alb_allowed"]["resource_changes"]
        if c["type"] == "aws_lb_listener" and c["address"].startswith("aws_lb_listener.http")
    ]
    assert [(listener["port"], listener["protocol"]) for listener in listeners] == [(80, "HTTP")]
    default = next(
        c["change"]["after"] for c in deployment.plan["resource_changes"] if c["address"] == "aws_lb_listener.http"
    )
    assert default["default_action"][0]["type"] == "redirect"
