"""parse_reference: which backend, which target, which field and parameters."""

from __future__ import annotations

import pytest

from meterline.secrets import SecretResolutionError, parse_reference


@pytest.mark.parametrize(
    ("text", "backend", "target", "field", "params"),
    [
        ("os.environ/OPENAI_API_KEY", "env", "OPENAI_API_KEY", None, {}),
        ("file:///run/secrets/openai", "file", "/run/secrets/openai", None, {}),
        ("file:///run/all.json#openai?refresh=30", "file", "/run/all.json", "openai", {"refresh": "30"}),
        ("aws-secretsmanager://prod/llm/keys", "aws-secretsmanager", "prod/llm/keys", None, {}),
        (
            "aws-secretsmanager://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/k-AbCdEf#OPENAI",
            "aws-secretsmanager",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/k-AbCdEf",
            "OPENAI",
            {},
        ),
        (
            "aws-secretsmanager://prod/k#F?version_stage=AWSPREVIOUS&region=eu-west-1",
            "aws-secretsmanager",
            "prod/k",
            "F",
            {"version_stage": "AWSPREVIOUS", "region": "eu-west-1"},
        ),
        ("aws-secretsmanager://prod/k?refresh=60#F", "aws-secretsmanager", "prod/k", "F", {"refresh": "60"}),
        ("vault://secret/meterline#dingtalk_url", "vault", "secret/meterline", "dingtalk_url", {}),
        ("sk-a-literal-key", "literal", "sk-a-literal-key", None, {}),
    ],
)
def test_parses(text: str, backend: str, target: str, field: str | None, params: dict[str, str]) -> None:
    reference = parse_reference(text)
    assert (reference.backend, reference.target, reference.field, dict(reference.params)) == (
        backend,
        target,
        field,
        params,
    )


def test_a_literal_never_shows_itself() -> None:
    reference = parse_reference("sk-a-literal-key")
    assert reference.display == "<literal value>"
    assert "sk-a-literal-key" not in repr(reference)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("vault://secret", "needs vault://MOUNT/PATH#field"),
        ("aws-secretsmanager://", "names no secret"),
        ("aws-secretsmanager://k?stage=AWSCURRENT", "unknown parameter(s) stage"),
        ("os.environ/K?refresh=0", "refresh must be a positive number of seconds"),
        (
            "gcp-sm://projects/p/secrets/k",
            "unknown reference scheme gcp-sm:// (known: os.environ/, file://, aws-secretsmanager://, vault://)",
        ),
        (
            "env://OPENAI_API_KEY",
            "unknown reference scheme env:// (known: os.environ/, file://, aws-secretsmanager://, vault://)",
        ),
    ],
)
def test_malformed_references(text: str, reason: str) -> None:
    with pytest.raises(SecretResolutionError) as caught:
        parse_reference(text)
    assert caught.value.reason == reason
    assert caught.value.reference == text


@pytest.mark.parametrize(
    "url", ["https://oapi.dingtalk.com/robot/send?access_token=t", "redis://:pw@h:6379/0", "postgresql://u:p@h/db"]
)
def test_urls_a_setting_takes_stay_literals(url: str) -> None:
    assert parse_reference(url).is_literal


@pytest.mark.parametrize(
    ("text", "shown", "reason"),
    [
        (
            "${MASTER_KEY}",
            "${MASTER_KEY}",
            "${MASTER_KEY} looks like an unexpanded shell variable: meterline.yaml expands none "
            "(to read the environment variable, write os.environ/MASTER_KEY)",
        ),
        (
            "aws-secretsmanager://${ENV}/llm#OPENAI",
            "${ENV}",
            "${ENV} looks like an unexpanded shell variable: meterline.yaml expands none "
            "(to read the environment variable, write os.environ/ENV)",
        ),
        (
            "aws-secretsmanager:/x",
            "aws-secretsmanager:/",
            "aws-secretsmanager:/ looks like a mistyped reference (a reference is aws-secretsmanager://NAME_OR_ARN[#field])",
        ),
        ("os.environ/", "os.environ/", "os.environ/ looks like a mistyped reference (a reference is os.environ/NAME)"),
    ],
)
def test_a_mistyped_reference_is_never_a_literal(text: str, shown: str, reason: str) -> None:
    """However the config was built, resolving refuses what loading it refuses (config.SecretRef)."""
    with pytest.raises(SecretResolutionError) as caught:
        parse_reference(text)
    assert (caught.value.reference, caught.value.backend, caught.value.reason) == (shown, "unknown", reason)
