"""Short-lived agent tokens: POST /v1/auth/token trades an agent key for an HS256 JWT.

Claims: sub (agent id), key_id (the key it was issued for: revoking or rotating the key ends the
token too), iat, exp (at most one hour after iat), iss=meterline. The signing key is
`key_store.jwt_signing_key` (a secret reference) or one generated once under the data dir.
When the signing key rotates, new tokens are signed with the new key and tokens signed with the
previous one keep verifying for MAX_TOKEN_SECONDS, the longest a token lives, so no agent
holding a token sees a 401 because of the rotation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.keys.rotating import RotatingSecret

ISSUER = "meterline"
ALGORITHM = "HS256"
MAX_TOKEN_SECONDS = 3600
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub", "key_id"]


class TokenError(Exception):
    """A token that is not ours, altered, or past its expiry (the message says which)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: int
    expires_in: int


@dataclass(frozen=True, slots=True)
class TokenClaims:
    agent_id: str
    key_id: str
    expires_at: float


def looks_like_jwt(value: str) -> bool:
    """A JWT by shape: three base64url parts, the header a JSON object (`eyJ` = `{"`)."""
    return value.startswith("eyJ") and value.count(".") == 2


class TokenIssuer:
    __slots__ = ("_clock", "_fixed", "_rotating")

    def __init__(self, signing_key: bytes | RotatingSecret, clock: Callable[[], float] = time.time) -> None:
        """`signing_key`: a fixed key, or a rotating one whose grace is MAX_TOKEN_SECONDS."""
        self._fixed = signing_key if isinstance(signing_key, bytes) else None
        self._rotating = signing_key if isinstance(signing_key, RotatingSecret) else None
        self._clock = clock

    def _signing_key(self) -> bytes:
        if self._rotating is not None:
            return self._rotating.current.encode()
        assert self._fixed is not None
        return self._fixed

    def _verifying_keys(self) -> list[bytes]:
        if self._rotating is None:
            return [self._signing_key()]
        return [value.encode() for value, _until in self._rotating.accepted()]

    def __repr__(self) -> str:
        return "TokenIssuer(<signing key>)"

    def issue(
        self, agent_id: str, key_id: str, expires_in: int | None = None, not_after: float | None = None
    ) -> IssuedToken:
        """A token for `expires_in` seconds (default and cap: one hour), ending no later than
        `not_after` (when the key itself ends)."""
        now = int(self._clock())
        seconds = MAX_TOKEN_SECONDS if expires_in is None else max(1, min(expires_in, MAX_TOKEN_SECONDS))
        if not_after is not None:
            seconds = max(1, min(seconds, int(not_after - now)))
        claims = {"sub": agent_id, "key_id": key_id, "iat": now, "exp": now + seconds, "iss": ISSUER}
        return IssuedToken(jwt.encode(claims, self._signing_key(), algorithm=ALGORITHM), now + seconds, seconds)

    def verify(self, token: str) -> TokenClaims:
        claims = self._decode(token)
        expires_at = float(claims["exp"])
        if expires_at <= self._clock():
            raise TokenError("token has expired")
        if not isinstance(claims["sub"], str) or not isinstance(claims["key_id"], str):
            raise TokenError("token is malformed or not issued by this gateway")
        return TokenClaims(claims["sub"], claims["key_id"], expires_at)

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a token signed with the current key or the previous one in its grace."""
        for key in self._verifying_keys():
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    issuer=ISSUER,
                    options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError:
                raise TokenError("token is malformed or not issued by this gateway") from None
            return claims
        raise TokenError("token signature is not valid")
