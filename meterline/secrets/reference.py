"""Parsing a config value into a secret reference; the text names the backend.

    os.environ/NAME                                       env (LiteLLM's form)
    file://PATH[#field]                                   file (mounted secrets)
    aws-secretsmanager://NAME_OR_ARN[#field][?version_stage=..&region=..]
    vault://MOUNT/PATH#field                              Vault KV version 2
    anything else                                         a literal value

A value that looks like a reference gone wrong is an error, not a literal, so a typo never
becomes a master key: a scheme nobody resolves (`gcp-sm://...`, `env://...`), a known scheme
without its two slashes (`aws-secretsmanager:/x`), an unexpanded `${NAME}` or `$NAME`
(the forms: meterline/secret_syntax.py). URLs whose scheme a setting itself takes (http, https,
redis, rediss, unix, postgres, postgresql) stay literals.

Every form takes `?refresh=SECONDS` to override how often the value is refreshed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from types import MappingProxyType
from urllib.parse import parse_qsl

from meterline.secret_syntax import (
    AWS_PREFIX,
    ENV_PREFIX,
    FILE_PREFIX,
    URL_SCHEMES,
    VAULT_PREFIX,
    is_reference,
    refused_form,
    unknown_scheme,
)
from meterline.secrets.base import SecretResolutionError

__all__ = [
    "AWS_PREFIX",
    "ENV_PREFIX",
    "FILE_PREFIX",
    "LITERAL",
    "URL_SCHEMES",
    "VAULT_PREFIX",
    "Reference",
    "is_reference",
    "parse_reference",
    "refused_form",
    "unknown_scheme",
]

LITERAL = "literal"
LITERAL_DISPLAY = "<literal value>"

_BACKEND_BY_PREFIX = (
    (ENV_PREFIX, "env"),
    (FILE_PREFIX, "file"),
    (AWS_PREFIX, "aws-secretsmanager"),
    (VAULT_PREFIX, "vault"),
)
_KNOWN_PARAMS = {
    "env": {"refresh"},
    "file": {"refresh"},
    "aws-secretsmanager": {"refresh", "version_stage", "region"},
    "vault": {"refresh", "version"},
}


@dataclass(frozen=True)
class Reference:
    raw: str = dataclass_field(repr=False)
    """The config text; for a literal this is the secret itself, so never show it (use `display`)."""
    backend: str
    target: str = dataclass_field(repr=False)
    """NAME (env), PATH (file), NAME_OR_ARN (aws), MOUNT/PATH (vault)."""
    field: str | None = None
    params: Mapping[str, str] = dataclass_field(default_factory=lambda: MappingProxyType({}))

    @property
    def display(self) -> str:
        """The reference as it may appear in logs, errors and tables."""
        return LITERAL_DISPLAY if self.backend == LITERAL else self.raw

    @property
    def is_literal(self) -> bool:
        return self.backend == LITERAL

    @property
    def refresh_seconds(self) -> float | None:
        text = self.params.get("refresh")
        return float(text) if text is not None else None

    def error(self, reason: str) -> SecretResolutionError:
        return SecretResolutionError(self.display, self.backend, reason)


def _split(rest: str) -> tuple[str, str | None, str]:
    """`target[#field][?query]` or `target[?query][#field]` -> (target, field, query)."""
    target, query, fragment = rest, "", None
    if "?" in target:
        target, _, query = target.partition("?")
        if "#" in query:
            query, _, fragment = query.partition("#")
    if "#" in target:
        target, _, fragment = target.partition("#")
    return target, fragment or None, query


def parse_reference(value: str) -> Reference:
    """The reference a config value stands for; raises SecretResolutionError for a malformed one."""
    if (refused := refused_form(value)) is not None:
        shown = value if unknown_scheme(value) is not None else refused.shown
        raise SecretResolutionError(shown, "unknown", refused.reason)
    found = next(((p, b) for p, b in _BACKEND_BY_PREFIX if value.startswith(p)), None)
    if found is None:
        return Reference(value, LITERAL, value)
    prefix, backend = found
    target, fragment, query = _split(value[len(prefix) :])
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(params) - _KNOWN_PARAMS[backend])
    if unknown:
        raise SecretResolutionError(value, backend, f"unknown parameter(s) {', '.join(unknown)}")
    if "refresh" in params:
        try:
            if float(params["refresh"]) <= 0:
                raise ValueError
        except ValueError:
            raise SecretResolutionError(value, backend, "refresh must be a positive number of seconds") from None
    if not target:
        raise SecretResolutionError(value, backend, "names no secret")
    if backend == "vault" and "/" not in target.strip("/"):
        raise SecretResolutionError(value, backend, "needs vault://MOUNT/PATH#field")
    return Reference(value, backend, target, fragment, MappingProxyType(params))
