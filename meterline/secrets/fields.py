"""`#field`: one field of a secret stored as a JSON object. Errors name fields, never values."""

from __future__ import annotations

import json
from typing import Any

from meterline.secrets.reference import Reference


def pick_field(reference: Reference, text: str) -> str:
    """`text` itself without a `#field`; with one, that field of the JSON object `text` holds."""
    if reference.field is None:
        return text
    try:
        data = json.loads(text)
    except ValueError:
        raise reference.error(f"the secret is not a JSON object, so it has no field {reference.field!r}") from None
    if not isinstance(data, dict):
        raise reference.error(f"the secret is not a JSON object, so it has no field {reference.field!r}")
    return field_of(reference, data)


def field_of(reference: Reference, data: dict[str, Any]) -> str:
    if reference.field not in data:
        known = ", ".join(sorted(str(k) for k in data)) or "none"
        raise reference.error(f"no field {reference.field!r} in the secret (fields: {known})")
    value = data[reference.field]
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if value is None or value == "":
        raise reference.error(f"field {reference.field!r} is empty")
    return str(value)
