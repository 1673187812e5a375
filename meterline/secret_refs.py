"""Kept for existing imports: secret references now live in `meterline.secrets`."""

from meterline.secrets import SecretResolutionError, resolve
from meterline.secrets.reference import ENV_PREFIX

__all__ = ["ENV_PREFIX", "SecretResolutionError", "resolve"]
