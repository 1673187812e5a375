"""Secret references in meterline.yaml and the backends that resolve them.

    os.environ/NAME                                 env.py
    file://PATH[#field]                             file.py
    aws-secretsmanager://NAME_OR_ARN[#field][?..]   aws.py
    vault://MOUNT/PATH#field                        vault.py

A backend has one method, `fetch(reference) -> SecretVersion` (`base.SecretBackend`).
`LiveSecret` (live.py) keeps a secret current; `SecretRegistry` (registry.py) owns every
secret of a process. Errors name the reference, the backend and the reason, never a value.
"""

from meterline.secrets.base import SecretBackend, SecretResolutionError, SecretVersion
from meterline.secrets.config_refs import config_references
from meterline.secrets.live import LiveSecret, SecretStatus
from meterline.secrets.reference import Reference, is_reference, parse_reference
from meterline.secrets.registry import SecretRegistry, install, installed, live_secret, resolve

__all__ = [
    "LiveSecret",
    "Reference",
    "SecretBackend",
    "SecretRegistry",
    "SecretResolutionError",
    "SecretStatus",
    "SecretVersion",
    "config_references",
    "install",
    "installed",
    "is_reference",
    "live_secret",
    "parse_reference",
    "resolve",
]
