"""The task roles' secrets policy is what `meterline secrets iam-policy` prints for the config
the module renders: the same secret ARNs (generated and provider keys, a JSON field or a whole
secret), the same customer-managed KMS keys (none for a secret under aws/secretsmanager)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from meterline.cli.main import main
from meterline.config import load_config
from tests.aws import use_moto
from tests.infra.conftest import MODULE_KEY, PROVIDER_KEY, Deployment
from tests.infra.terraform import output, resources


def test_the_module_policy_equals_the_cli_policy(
    deployment: Deployment, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_moto(monkeypatch, deployment.moto_url)
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(["secrets", "iam-policy", "--config", str(config_file)]) == 0
    cli = json.loads(printed.getvalue())

    module = json.loads(output(deployment.plan, "secrets_policy_json"))

    assert module == cli
    read, decrypt = module["Statement"]
    assert read["Resource"] == sorted({*deployment.secret_arns.values(), *deployment.provider_arns.values()})
    assert decrypt["Resource"] == sorted({MODULE_KEY, PROVIDER_KEY})
    policies = resources(deployment.plan, "aws_iam_policy")
    assert json.loads(policies["aws_iam_policy.secrets"]["policy"]) == cli


def test_every_secret_in_the_config_is_a_reference(deployment: Deployment, config_file: Path) -> None:
    config, _ = load_config(config_file, environ={})
    assert config.general_settings.master_key == f"aws-secretsmanager://{deployment.secret_arns['master-key']}"
    keys = {d.model_name: d.litellm_params.api_key for d in config.model_list}
    assert keys == {
        "gpt-4o-mini": f"aws-secretsmanager://{deployment.provider_arns['openai']}#OPENAI_API_KEY",
        "claude": f"aws-secretsmanager://{deployment.provider_arns['anthropic']}",
    }
    assert config.telemetry.capture_content is False
    assert [p.name for p in config.collector.ingest_tokens] == ["gateways", "agents"]
    assert config.agents[0].id == "support-bot"  # var.config's sections pass through


def test_every_task_role_carries_the_secrets_policy_and_the_execution_role_does_not(deployment: Deployment) -> None:
    attached = resources(deployment.plan, "aws_iam_role_policy_attachment")
    secrets = "aws_iam_role_policy_attachment.secrets"
    roles = {a["role"] for address, a in attached.items() if address.startswith(secrets)}
    assert roles == {f"acme-meterline-prod-{r}" for r in ("gateway", "collector", "analytics", "dashboard", "keys")}
    assert "acme-meterline-prod-execution" not in roles
