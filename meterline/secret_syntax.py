"""What a secret reference looks like, apart from the backends that resolve it.

`meterline.config` refuses a mistyped reference when the file is loaded (naming the file and the
field), and `meterline.secrets` refuses it again when resolving a value however the config was
built. This module imports nothing from either, so both can use it.

A value of a secret field is refused when it looks like a reference that went wrong, because
taken literally it would become, say, a master key anyone can guess:

    ${NAME}, ${NAME:-x} anywhere, or the whole value $NAME   an unexpanded shell variable
    aws-secretsmanager:/x, vault:secret/x, file:/x           a known scheme without its two slashes
    os.environ:NAME, os.environ.NAME, os.environ/            not os.environ/NAME
    https:/host, gcp-sm:/x                                   any scheme with one slash
    gcp-sm://x, env://X                                      a scheme no backend resolves

URLs a setting itself takes (http, https, redis, rediss, unix, postgres, postgresql) are literals.
"""

from __future__ import annotations

import re
from typing import NamedTuple

ENV_PREFIX = "os.environ/"
FILE_PREFIX = "file://"
AWS_PREFIX = "aws-secretsmanager://"
VAULT_PREFIX = "vault://"
PREFIXES = (ENV_PREFIX, FILE_PREFIX, AWS_PREFIX, VAULT_PREFIX)
URL_SCHEMES = frozenset({"http", "https", "redis", "rediss", "unix", "postgres", "postgresql"})

_FORM_OF_SCHEME = {
    "aws-secretsmanager": "aws-secretsmanager://NAME_OR_ARN[#field]",
    "vault": "vault://MOUNT/PATH#field",
    "file": "file://PATH",
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BRACED_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")
_BARE_VARIABLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_KNOWN_WITHOUT_SLASHES = re.compile(r"^(aws-secretsmanager|vault|file):(/?)(?!/)", re.IGNORECASE)
_ONE_SLASH = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")
_ENV_REFERENCE = re.compile(r"^os\.environ/[^/]")


class RefusedForm(NamedTuple):
    shown: str
    """The part of the value the reason quotes: a variable name or a scheme, never the rest."""
    reason: str


def is_reference(value: str) -> bool:
    """`value` starts with a prefix some backend resolves."""
    return value.startswith(PREFIXES)


def unknown_scheme(value: str) -> str | None:
    """The scheme of a value that looks like a reference no backend resolves, else None."""
    found = _SCHEME.match(value)
    if found is None or is_reference(value) or found.group(1).lower() in URL_SCHEMES:
        return None
    return found.group(1)


def refused_form(value: str) -> RefusedForm | None:
    """Why `value`, given for a secret field, cannot be meant literally; None when it can."""
    if (braced := _BRACED_VARIABLE.search(value)) is not None:
        return _variable(f"${{{braced.group(1)}}}", braced.group(1))
    if (bare := _BARE_VARIABLE.match(value)) is not None:
        return _variable(value, bare.group(1))
    if (slashless := _KNOWN_WITHOUT_SLASHES.match(value)) is not None:
        shown = f"{slashless.group(1)}:{slashless.group(2)}"
        form = _FORM_OF_SCHEME[slashless.group(1).lower()]
        return RefusedForm(shown, f"{shown} looks like a mistyped reference (a reference is {form})")
    if value[: len(ENV_PREFIX) - 1].lower() == "os.environ" and _ENV_REFERENCE.match(value) is None:
        shown = value[: len(ENV_PREFIX)]
        return RefusedForm(shown, f"{shown} looks like a mistyped reference (a reference is os.environ/NAME)")
    if (slash := _ONE_SLASH.match(value)) is not None and not is_reference(value):
        shown = f"{slash.group(1)}:/"
        return RefusedForm(shown, f"{shown} has one slash after the scheme: a mistyped URL or reference")
    if (scheme := unknown_scheme(value)) is not None:
        known = ", ".join(PREFIXES)
        return RefusedForm(f"{scheme}://", f"unknown reference scheme {scheme}:// (known: {known})")
    return None


def _variable(shown: str, name: str) -> RefusedForm:
    return RefusedForm(
        shown,
        f"{shown} looks like an unexpanded shell variable: meterline.yaml expands none "
        f"(to read the environment variable, write os.environ/{name})",
    )
