"""What a provider says back never carries a credential to an agent, a log or the ledger.

Provider error bodies, error events in a stream and LiteLLM's exception texts go through here
before anything is made of them. Two passes:

- every value the gateway holds for the deployment's provider key: the current version and the
  previous ones (`LiveSecret.previous_values`: a request that started before a rotation may
  still be answered with the old key quoted);
- anything shaped like a credential, whoever it belongs to: `sk-...` and `sk-ant-...` keys, AWS
  access key ids, Google API keys, GitHub and Slack tokens, `Bearer <token>`, and a long token
  of letters and digits right after "key", "token", "secret" or "password".

Every string of a JSON body is scrubbed, keys and nested values included. The mask is `***`.
Only failures pay for this: successful responses are relayed as they are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MASK = "***"

MIN_SECRET_LENGTH = 6
"""Shorter held values are not masked by value (a 1-character key would mask every such letter)."""

_MAX_JSON_DEPTH = 64

_SHAPED = re.compile(
    r"""
      sk-ant-[A-Za-z0-9_\-]{8,}           # Anthropic
    | \bsk-[A-Za-z0-9_\-]{16,}            # OpenAI and the OpenAI-compatible providers
    | \b(?:AKIA|ASIA)[0-9A-Z]{16}\b       # AWS access key ids
    | \bAIza[0-9A-Za-z_\-]{35}            # Google API keys
    | \bgh[pousr]_[A-Za-z0-9]{30,}        # GitHub tokens
    | \bxox[abprs]-[A-Za-z0-9\-]{10,}     # Slack tokens
    """,
    re.VERBOSE,
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*")
_AFTER_KEY = re.compile(
    r"""(?ix)
    \b((?:api[_\-\ ]?)?key|token|secret|password)
([\\"'\s]*(?:[:=]|\bprovided:?|\bis:?)?[\\"'\s]*)   # quotes, escaped ones too
    ([A-Za-z0-9_\-.+/=]{20,})
    """
)
_HINT = re.compile(r"(?i)sk-|akia|asia|aiza|gh[pousr]_|xox|bearer|key|token|secret|password")


def _mask_token(match: re.Match[str]) -> str:
    token = match.group(3)
    # High entropy enough: letters and digits both (an identifier like "usage_limit_for_this_org" is kept).
    if any(c.isdigit() for c in token) and any(c.isalpha() for c in token):
        return match.group(1) + match.group(2) + MASK
    return match.group(0)


def scrub_text(text: str, held: Sequence[str] = ()) -> str:
    """`text` without any of the `held` secret values and without anything shaped like a credential."""
    for secret in held:
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    if _HINT.search(text) is None:
        return text
    text = _SHAPED.sub(MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _AFTER_KEY.sub(_mask_token, text)


def scrub_json(value: Any, held: Sequence[str] = (), _depth: int = 0) -> Any:
    """A parsed JSON value with every string in it scrubbed (object keys too); deeper than
    64 levels, what remains is replaced by the mask."""
    if isinstance(value, str):
        return scrub_text(value, held)
    if _depth >= _MAX_JSON_DEPTH and isinstance(value, (dict, list)):
        return MASK
    if isinstance(value, dict):
        return {scrub_text(str(k), held): scrub_json(v, held, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v, held, _depth + 1) for v in value]
    return value


def held_secrets(key: object) -> tuple[str, ...]:
    """Every value the gateway holds for a provider key (a `LiveSecret`, or the `SecretValue` an
    attempt pinned), longest first so that no value is masked only in part."""
    if key is None:
        return ()
    values = [str(key.reveal()), *getattr(key, "previous_values", ())]  # type: ignore[attr-defined]
    return tuple(sorted({v for v in values if v}, key=len, reverse=True))
