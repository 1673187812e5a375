"""meterline/secret_syntax.py: which values of a secret field look like a reference gone wrong."""

from __future__ import annotations

import pytest

from meterline.secret_syntax import refused_form

KNOWN = "os.environ/, file://, aws-secretsmanager://, vault://"
AWS = "aws-secretsmanager://NAME_OR_ARN[#field]"
VAULT = "vault://MOUNT/PATH#field"
ENV = "os.environ/NAME"


def variable(shown: str, name: str) -> str:
    return (
        f"{shown} looks like an unexpanded shell variable: meterline.yaml expands none "
        f"(to read the environment variable, write os.environ/{name})"
    )


def mistyped(shown: str, form: str) -> str:
    return f"{shown} looks like a mistyped reference (a reference is {form})"


@pytest.mark.parametrize(
    ("value", "shown", "reason"),
    [
        ("${MASTER_KEY}", "${MASTER_KEY}", variable("${MASTER_KEY}", "MASTER_KEY")),
        ("${MASTER_KEY:-changeme}", "${MASTER_KEY}", variable("${MASTER_KEY}", "MASTER_KEY")),
        ("redis://:${REDIS_PW}@cache:6379/0", "${REDIS_PW}", variable("${REDIS_PW}", "REDIS_PW")),
        ("$MASTER_KEY", "$MASTER_KEY", variable("$MASTER_KEY", "MASTER_KEY")),
        ("aws-secretsmanager:/x", "aws-secretsmanager:/", mistyped("aws-secretsmanager:/", AWS)),
        ("aws-secretsmanager:prod/k", "aws-secretsmanager:", mistyped("aws-secretsmanager:", AWS)),
        ("vault:/x", "vault:/", mistyped("vault:/", VAULT)),
        ("Vault:/secret/m#k", "Vault:/", mistyped("Vault:/", VAULT)),
        ("file:/x", "file:/", mistyped("file:/", "file://PATH")),
        ("os.environ:NAME", "os.environ:", mistyped("os.environ:", ENV)),
        ("os.environ.NAME", "os.environ.", mistyped("os.environ.", ENV)),
        ("os.environ/", "os.environ/", mistyped("os.environ/", ENV)),
        ("os.environ//NAME", "os.environ/", mistyped("os.environ/", ENV)),
        ("OS.ENVIRON/NAME", "OS.ENVIRON/", mistyped("OS.ENVIRON/", ENV)),
        ("https:/api.example.com/v1", "https:/", "https:/ has one slash after the scheme: a mistyped URL or reference"),
        ("env://NAME", "env://", f"unknown reference scheme env:// (known: {KNOWN})"),
        ("gcp-sm://projects/p/secrets/k", "gcp-sm://", f"unknown reference scheme gcp-sm:// (known: {KNOWN})"),
    ],
)
def test_a_reference_gone_wrong_is_refused(value: str, shown: str, reason: str) -> None:
    refused = refused_form(value)
    assert refused is not None
    assert (refused.shown, refused.reason) == (shown, reason)


@pytest.mark.parametrize(
    "value",
    [
        "os.environ/MASTER_KEY",
        "file:///run/secrets/master",
        "aws-secretsmanager://prod/meterline/master-key#key",
        "vault://secret/meterline#master",
        "https://api.openai.com/v1",
        "postgresql://meterline:pa$$word@db:5432/meterline",
        "redis://:s3cr$t@cache:6379/0",
        "sk-proj-Ab$Cd-0123456789abcdef",
        "demo-key-support-bot",
        "$",
    ],
)
def test_literals_and_references_pass(value: str) -> None:
    assert refused_form(value) is None


def test_a_secret_around_a_variable_is_never_quoted() -> None:
    refused = refused_form("sk-live-0123456789${SUFFIX}abcdef")
    assert refused is not None
    assert "sk-live" not in refused.reason and "abcdef" not in refused.reason
