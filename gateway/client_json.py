"""A client's JSON body, read strictly: UTF-8 only, at most `MAX_DEPTH` levels deep, no lone
surrogates. Anything else is a 400 (`InvalidRequest`) in the caller's protocol, never a crash.

Why each rule:
- Strict UTF-8. `json.loads(bytes)` guesses UTF-16/32 and decodes with `surrogatepass`, so UTF-8
  bytes of a surrogate (`ED A0 80`) became a string that no encoder (orjson towards the provider,
  the usage record's protobuf) accepts.
- A depth limit. The standard library's parser recurses; a few thousand levels raised
  RecursionError (a 502, or a dropped connection where it surfaced outside the route), and
  orjson refuses to write what it cannot read back (255 levels), so a body that parsed could
  still fail on its way to the provider. 128 levels is far beyond any real request (OpenAI caps
  a structured-output schema at 5 levels of nesting; tool schemas are a few levels deep).
- No lone surrogates. A valid JSON escape (`"\\ud800"`) decodes to a string that cannot be
  encoded as UTF-8: the provider could not be sent it and the ledger could not record it.

Cost: every body is decoded, parsed, has its `[`/`{` bytes counted and is searched for a
surrogate escape (all in C). A body with more brackets than the limit has its structure read
from its bytes (`_shallow`; the parsed value is walked only when a string holds brackets), and
only one with a surrogate escape is parsed again by orjson (and, if that fails, re-encoded to
find the lone surrogate). Figures: docs/performance.md.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

import orjson

from gateway.errors import InvalidRequest

MAX_DEPTH = 128
"""Levels of nesting a client body may have (the top-level object is level 1)."""


def _maybe_lone_surrogate(body: bytes) -> bool:
    """Whether `body` may hold a lone surrogate: it has a surrogate escape and orjson, which
    refuses unpaired ones (and, unlike the standard library, NaN and Infinity), refuses it. A
    body of paired escapes (emoji from an `ensure_ascii` client) costs one orjson parse."""
    if b"\\ud" not in body and b"\\uD" not in body:
        return False
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return True
    return False


def loads_client(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body; InvalidRequest when it is not UTF-8, not JSON, too deep, or holds a
    string that is not valid Unicode."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise too_deep(max_depth) from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}") from None
    if body.count(b"[") + body.count(b"{") > max_depth and not _shallow(body, max_depth):
        check_depth(data, max_depth)
    if _maybe_lone_surrogate(body):
        check_unicode(data)
    return data


def too_deep(max_depth: int) -> InvalidRequest:
    return InvalidRequest(f"Request body is nested more than {max_depth} levels deep.")


_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')


def _shallow(body: bytes, max_depth: int) -> bool:
    """A proof, from the bytes alone, that a valid JSON body nests at most `max_depth` deep; False
    when it cannot tell (the exact walk decides). With the escaped backslashes and quotes taken
    out (left to right, as a parser pairs them), the brackets and quotes leave `""` for every
    string without a bracket in it; once those are gone, a quote left means some string holds a
    bracket (it has an odd number of quotes before it, and only pairs were removed). Otherwise
    what is left is the structure, and each pass that removes every adjacent `[]` and then every
    `{}` peels one or two levels."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:
        return False
    for _ in range(max_depth // 2):
        if not skeleton:
            return True
        skeleton = skeleton.replace(b"[]", b"").replace(b"{}", b"")
    return not skeleton


def _members(container: Any) -> Any:
    """What a container holds; nothing for a long list of scalars (a token array), told apart
    by its members' types in C rather than one by one."""
    if type(container) is dict:
        return container.values()
    if len(container) > 32:
        kinds = set(map(type, container))
        if dict not in kinds and list not in kinds:
            return ()
    return container


def check_depth(data: Any, max_depth: int) -> None:
    """No container in `data` deeper than `max_depth` (the top level is 1), level by level
    without recursion."""
    level = [data] if isinstance(data, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise too_deep(max_depth)
        level = [m for m in chain.from_iterable(map(_members, level)) if type(m) is dict or type(m) is list]


def check_unicode(data: Any) -> None:
    """No string or key in `data` that UTF-8 cannot encode (a lone surrogate from an escape)."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        raise InvalidRequest(
            f"Request body holds a lone surrogate (\\u{code:04x}); strings must be valid Unicode."
        ) from None
