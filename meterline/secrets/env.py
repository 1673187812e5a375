"""`os.environ/NAME`: a value from the process environment, as LiteLLM resolves it."""

from __future__ import annotations

import os

from meterline.secrets.base import SecretVersion, now
from meterline.secrets.fields import pick_field
from meterline.secrets.reference import Reference


class EnvBackend:
    name = "env"

    def fetch(self, reference: Reference) -> SecretVersion:
        value = os.environ.get(reference.target)
        if not value:
            raise reference.error(f"environment variable {reference.target} is not set or empty")
        return SecretVersion(pick_field(reference, value), None, now())
