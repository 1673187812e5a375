"""Cache keys for the exact-match response cache."""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_VERSION = "v1"
"""Bumped when the key derivation changes, so old entries are never read under new rules."""

IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "metadata"})
"""Request fields that do not change the answer: how it is delivered and who asked."""


def cache_key(model_group: str, body: dict[str, Any], *, endpoint: str | None = None) -> str:
    """The key of a request: `v1:<model_group>:<sha256 hex>`.

    The digest covers the canonical JSON of `body` (keys sorted at every level, no
    whitespace, UTF-8) without the top-level fields in `IGNORED_FIELDS`: `stream` and
    `stream_options` (a streamed and a non-streamed request get the same answer), `user` and
    `metadata` (attribution, not content). Everything else counts, including sampling
    parameters and `n`: enabling the cache for a model group is the operator's statement that
    its answers may be reused. Equal values written differently (`1` vs `1.0`) give different
    keys; that costs a miss, never a wrong answer.

    The key is namespaced by model group, and by `endpoint` when given. Pass the route
    (`/v1/chat/completions`, `/v1/messages`, ...) whenever the stored value is a wire-format
    response: the same body can be valid for two endpoints whose responses differ in shape.
    """
    relevant = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256()
    if endpoint is not None:
        digest.update(endpoint.encode())
        digest.update(b"\x00")
    digest.update(canonical.encode())
    return f"{KEY_VERSION}:{model_group}:{digest.hexdigest()}"
