"""`meterline secrets check|iam-policy`: the secret references of the config, without values.

`check` resolves every reference and prints reference, backend, version, age and ok or the error
(exit 1 if any fails). `iam-policy` prints the least-privilege IAM policy reading exactly the
config's `aws-secretsmanager://` references needs: `secretsmanager:GetSecretValue` on their ARNs
(from DescribeSecret; where that is not allowed, the name-based ARN pattern with Secrets
Manager's `-??????` suffix) and `kms:Decrypt` on their customer-managed KMS keys, only via
Secrets Manager. Secrets under the AWS managed key `aws/secretsmanager` need no KMS statement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from meterline.config import load_config
from meterline.secrets import SecretRegistry, SecretResolutionError, config_references, parse_reference
from meterline.secrets.aws import AwsSecretsManagerBackend, region_of
from meterline.secrets.reference import Reference

COLUMNS = ("reference", "backend", "version", "age", "status")


def _age(created: dt.datetime | None, now: dt.datetime) -> str:
    if created is None:
        return "-"
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _unique(args: argparse.Namespace) -> tuple[SecretRegistry, list[str]]:
    config, _source = load_config(args.config)
    values = list(dict.fromkeys(value for _path, value, _live in config_references(config)))
    return SecretRegistry(config.secrets), values


def check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    registry, values = _unique(args)
    now = dt.datetime.now(dt.UTC)
    rows: list[tuple[str, ...]] = []
    failed = 0
    for value in values:
        try:
            reference, version = registry.fetch(value)
        except SecretResolutionError as exc:
            failed += 1
            rows.append((exc.reference, exc.backend, "-", "-", f"error: {exc.reason}"))
            continue
        rows.append((reference.display, reference.backend, version.version or "-", _age(version.created_at, now), "ok"))
    registry.close()
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
    for row in [COLUMNS, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=out)
    print(f"{len(rows) - failed} of {len(rows)} references resolved", file=out)
    return 1 if failed else 0


def _kms_key_arn(key_id: str, region: str, account: str) -> str:
    if key_id.startswith("arn:") and ":alias/" not in key_id:
        return key_id
    try:
        kms = boto3.session.Session().client("kms", region_name=region)
        return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])
    except (BotoCoreError, ClientError):
        if key_id.startswith(("arn:", "alias/")):
            return f"arn:aws:kms:{region}:{account}:key/*"  # an alias we may not resolve: any key, via Secrets Manager
        return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def policy(references: list[Reference], backend: AwsSecretsManagerBackend, default_region: str) -> dict[str, Any]:
    arns: list[str] = []
    keys: list[str] = []
    regions: list[str] = []
    unresolved: list[Reference] = []
    account = "*"
    for reference in references:
        region = region_of(reference) or default_region
        regions.append(region)
        try:
            described = backend.describe(reference)
        except SecretResolutionError:
            unresolved.append(reference)
            continue
        arns.append(described.arn)
        account = described.arn.split(":")[4]
        if described.kms_key_id:
            keys.append(_kms_key_arn(described.kms_key_id, region, account))
    for reference in unresolved:
        if reference.target.startswith("arn:"):
            arns.append(reference.target)
        else:
            region = region_of(reference) or default_region
            arns.append(f"arn:aws:secretsmanager:{region}:{account}:secret:{reference.target}-??????")
    statements: list[dict[str, Any]] = []
    if arns:
        statements.append(
            {
                "Sid": "MeterlineReadSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(set(arns)),
            }
        )
    if keys:
        services = sorted({f"secretsmanager.{r}.amazonaws.com" for r in regions})
        statements.append(
            {
                "Sid": "MeterlineDecryptSecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": sorted(set(keys)),
                "Condition": {"StringEquals": {"kms:ViaService": services if len(services) > 1 else services[0]}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def iam_policy(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    _registry, values = _unique(args)
    references = [r for r in map(parse_reference, values) if r.backend == "aws-secretsmanager"]
    # The Secrets Manager ARN does not depend on the version stage: one reference per secret.
    unique = list({(r.target, region_of(r)): r for r in references}.values())
    if not unique:
        print("meterline: no aws-secretsmanager:// references in the config", file=sys.stderr)
    default_region = boto3.session.Session().region_name or "*"
    print(json.dumps(policy(unique, AwsSecretsManagerBackend(), default_region), indent=2), file=out)
    return 0


def add_parser(verbs: Any, shared: Callable[..., None]) -> None:
    """`meterline secrets check|iam-policy`; `shared` adds --config and --data-dir."""
    parser = verbs.add_parser("secrets", help="check the config's secret references; the IAM policy they need")
    actions = parser.add_subparsers(dest="secrets_verb", required=True, metavar="ACTION")
    check_parser = actions.add_parser("check", help="resolve every reference: version, age, ok or error (no values)")
    shared(check_parser, top=False)
    check_parser.set_defaults(run=check)
    policy_parser = actions.add_parser(
        "iam-policy", help="print the least-privilege IAM policy for the aws-secretsmanager:// references"
    )
    shared(policy_parser, top=False)
    policy_parser.set_defaults(run=iam_policy)
