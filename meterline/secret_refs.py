"""Secret references in meterline.yaml: `os.environ/NAME` (LiteLLM's form) or a literal value.

Issue #5 adds `aws-secretsmanager://`, `vault://` and `file://` backends behind the same call.
Errors name the reference and the reason, never a value.
"""

from __future__ import annotations

import os

ENV_PREFIX = "os.environ/"


class SecretResolutionError(Exception):
    def __init__(self, reference: str, backend: str, reason: str) -> None:
        super().__init__(f"cannot resolve secret reference {reference!r} ({backend}): {reason}")
        self.reference = reference
        self.backend = backend


def resolve(value: str) -> str:
    """The secret a config value stands for: the referenced value, or the literal itself."""
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        resolved = os.environ.get(name)
        if not resolved:
            raise SecretResolutionError(value, "env", f"environment variable {name} is not set or empty")
        return resolved
    return value
