"""The module rendered once per session: AWS Secrets Manager in moto holds the secrets the module
would create (under its names) and two provider keys, and `terraform test` plans the module with
those ARNs in place of what AWS would return."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aws import REGION, moto_server, secretsmanager
from tests.infra.terraform import render_plan, terraform_missing

ACCOUNT = "123456789012"
TENANT, ENV = "acme", "prod"
MODULE_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
PROVIDER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/99999999-8888-7777-6666-555555555555"
GENERATED = ("master-key", "key-hash-secret", "jwt-signing-key", "ingest-tokens", "database-url", "redis-url")
TIMEZONE = "Asia/Shanghai"


@dataclass
class Deployment:
    moto_url: str
    secret_arns: dict[str, str]  # the module's secrets by name, as moto made them
    provider_arns: dict[str, str]  # openai (a JSON field, own KMS key), anthropic (whole secret, AWS key)
    plans: dict[str, dict[str, Any]]

    @property
    def plan(self) -> dict[str, Any]:
        return self.plans["default"]


def require_terraform() -> None:
    """Skip (or fail under CI) where `terraform test` cannot run."""
    reason = terraform_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI requires it (the module's rendering must not go untested)")
    pytest.skip(reason)


def _mocks() -> str:
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    defaults = {
        "aws_lb": f'arn = "{arn.format("elasticloadbalancing", "loadbalancer/app/x/1")}", arn_suffix = "app/x/1"',
        "aws_lb_target_group": (
            f'arn = "{arn.format("elasticloadbalancing", "targetgroup/x/1")}", arn_suffix = "targetgroup/x/1"'
        ),
        "aws_lb_listener": f'arn = "{arn.format("elasticloadbalancing", "listener/app/x/1/2")}"',
        "aws_kms_key": f'arn = "{MODULE_KEY}"',
        "aws_iam_role": f'arn = "arn:aws:iam::{ACCOUNT}:role/x"',
        "aws_iam_policy": f'arn = "arn:aws:iam::{ACCOUNT}:policy/x"',
        "aws_wafv2_web_acl": f'arn = "{arn.format("wafv2", "regional/webacl/x/1")}"',
        "aws_wafv2_ip_set": f'arn = "{arn.format("wafv2", "regional/ipset/x/1")}"',
        "aws_ecs_cluster": f'arn = "{arn.format("ecs", "cluster/x")}"',
        "aws_ecs_task_definition": f'arn = "{arn.format("ecs", "task-definition/x:1")}"',
        "aws_ecs_service": f'id = "{arn.format("ecs", "service/x/gateway")}"',
        "aws_secretsmanager_secret": f'arn = "{arn.format("secretsmanager", "secret:x-AbCdEf")}"',
        "aws_efs_file_system": f'arn = "{arn.format("elasticfilesystem", "file-system/fs-1")}"',
        "aws_efs_access_point": f'arn = "{arn.format("elasticfilesystem", "access-point/fsap-1")}"',
        "aws_cloudwatch_log_group": f'arn = "{arn.format("logs", "log-group:x")}"',
        "aws_s3_bucket": 'arn = "arn:aws:s3:::x"',
    }
    block = '  mock_{} "{}" {{\n    defaults = {{ {} }}\n  }}\n'
    resources = "".join(block.format("resource", kind, value) for kind, value in defaults.items())
    data = {
        "aws_region": f'name = "{REGION}"',
        "aws_caller_identity": f'account_id = "{ACCOUNT}"',
        "aws_partition": 'partition = "aws"',
        "aws_vpc": 'cidr_block = "10.0.0.0/16"',
        "aws_iam_policy_document": 'json = "{}"',
    }
    sources = "".join(block.format("data", kind, value) for kind, value in data.items())
    return f'mock_provider "aws" {{\n  override_during = plan\n{resources}{sources}}}\n'


def tftest(secret_arns: dict[str, str], provider_arns: dict[str, str]) -> str:
    overrides = "".join(
        f'override_resource {{\n  target          = aws_secretsmanager_secret.this["{name}"]\n'
        f'  override_during = plan\n  values          = {{ arn = "{arn}" }}\n}}\n'
        for name, arn in secret_arns.items()
    )
    return f"""{_mocks()}
{overrides}
variables {{
  tenant             = "{TENANT}"
  env                = "{ENV}"
  timezone           = "{TIMEZONE}"
  vpc_id             = "vpc-1"
  public_subnet_ids  = ["subnet-a", "subnet-b"]
  private_subnet_ids = ["subnet-c", "subnet-d"]
  alb_ingress_cidrs  = ["0.0.0.0/0"]
  image              = "123456789012.dkr.ecr.{REGION}.amazonaws.com/meterline@sha256:{"0" * 64}"
  provider_keys = {{
    openai = {{
      secret_arn = "{provider_arns["openai"]}", json_key = "OPENAI_API_KEY", kms_key_arn = "{PROVIDER_KEY}"
    }}
    anthropic = {{ secret_arn = "{provider_arns["anthropic"]}" }}
  }}
  models = [
    {{ model_name = "gpt-4o-mini", model = "openai/gpt-4o-mini", provider_key = "openai" }},
    {{ model_name = "claude", model = "anthropic/claude-sonnet-4-5", provider_key = "anthropic" }},
  ]
  config = {{
    agents = [{{ id = "support-bot", team = "support" }}]
  }}
  acm_certificate_arn          = "arn:aws:acm:{REGION}:{ACCOUNT}:certificate/alb"
  gateway_hostname             = "llm.example.com"
  dashboard_hostname           = "meterline.example.com"
  dashboard_cognito = {{
    user_pool_arn = "arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/p"
    user_pool_client_id = "c", user_pool_domain = "d"
  }}
  dashboard_oidc_client_secret = null
  collector_certificate_arn    = "arn:aws:acm:{REGION}:{ACCOUNT}:certificate/collector"
  collector_hostname           = "collector.example.internal"
  private_zone_id              = "Z1"
}}

run "default" {{
  command = plan
}}

run "plaintext_alb_refused" {{
  command = plan
  variables {{
    acm_certificate_arn = null
  }}
  expect_failures = [aws_lb.this]
}}

run "plaintext_alb_allowed" {{
  command = plan
  variables {{
    acm_certificate_arn = null
    allow_plaintext_alb = true
  }}
}}

run "span_export" {{
  command = plan
  variables {{
    span_export = {{
      endpoint           = "https://api.honeycomb.io"
      headers_secret_arn = "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:honeycomb-AbCdEf"
      collector_image    = "otel/opentelemetry-collector-contrib:0.139.0"
    }}
  }}
}}

run "owned_section_refused" {{
  command = plan
  variables {{
    config = {{ telemetry = {{ capture_content = true }} }}
  }}
  expect_failures = [terraform_data.config_checks]
}}

run "plaintext_collector_refused" {{
  command = plan
  variables {{
    collector_certificate_arn = null
  }}
  expect_failures = [aws_lb.collector]
}}
"""


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_terraform()
    with moto_server() as url:
        client = secretsmanager(url)
        secret_arns = {
            name: client.create_secret(Name=f"{TENANT}-meterline-{ENV}/{name}", KmsKeyId=MODULE_KEY, SecretString="x")[
                "ARN"
            ]
            for name in GENERATED
        }
        provider_arns = {
            "openai": client.create_secret(
                Name="prod/llm/provider-keys", KmsKeyId=PROVIDER_KEY, SecretString='{"OPENAI_API_KEY": "sk-x"}'
            )["ARN"],
            "anthropic": client.create_secret(Name="prod/llm/anthropic", SecretString="sk-ant-x")["ARN"],
        }
        plans = render_plan(tmp_path_factory.mktemp("terraform"), tftest(secret_arns, provider_arns))
        yield Deployment(url, secret_arns, provider_arns, plans)


@pytest.fixture
def config_file(deployment: Deployment, tmp_path: Path) -> Path:
    """The meterline.yaml the module rendered, as a file."""
    from tests.infra.terraform import output

    path = tmp_path / "meterline.yaml"
    path.write_text(output(deployment.plan, "config_yaml"), encoding="utf-8")
    return path
