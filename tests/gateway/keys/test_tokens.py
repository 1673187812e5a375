from __future__ import annotations

import jwt
import pytest

from gateway.keys.tokens import MAX_TOKEN_SECONDS, TokenClaims, TokenError, TokenIssuer, looks_like_jwt

SIGNING_KEY = b"k" * 43


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_issue_and_verify_round_trip_with_claims() -> None:
    clock = Clock()
    issuer = TokenIssuer(SIGNING_KEY, clock)
    issued = issuer.issue("bot", "key_1", expires_in=600)
    assert (issued.expires_in, issued.expires_at) == (600, 1_700_000_600)
    assert looks_like_jwt(issued.token)
    claims = jwt.decode(issued.token, SIGNING_KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "bot", "key_id": "key_1", "iat": 1_700_000_000, "exp": 1_700_000_600, "iss": "meterline"}
    assert issuer.verify(issued.token) == TokenClaims("bot", "key_1", 1_700_000_600.0)
    assert "k" * 43 not in repr(issuer)


@pytest.mark.parametrize(
    ("expires_in", "not_after", "expected"),
    [(None, None, MAX_TOKEN_SECONDS), (99_999, None, MAX_TOKEN_SECONDS), (0, None, 1), (600, 1_700_000_120.0, 120)],
)
def test_expiry_is_capped_at_an_hour_and_at_the_keys_end(
    expires_in: int | None, not_after: float | None, expected: int
) -> None:
    assert TokenIssuer(SIGNING_KEY, Clock()).issue("bot", "k", expires_in, not_after).expires_in == expected


def test_expired_forged_and_foreign_tokens_are_refused() -> None:
    clock = Clock()
    issuer = TokenIssuer(SIGNING_KEY, clock)
    token = issuer.issue("bot", "key_1", expires_in=60).token
    clock.now += 60
    with pytest.raises(TokenError, match=r"^token has expired$"):
        issuer.verify(token)
    forged = TokenIssuer(b"x" * 43, Clock()).issue("bot", "key_1").token
    with pytest.raises(TokenError, match=r"^token signature is not valid$"):
        issuer.verify(forged)
    claims = {"sub": "bot", "key_id": "k", "iat": 1, "exp": 1_800_000_000}
    for foreign in (
        jwt.encode({**claims, "iss": "someone-else"}, SIGNING_KEY, algorithm="HS256"),
        jwt.encode(claims, SIGNING_KEY, algorithm="HS256"),  # no issuer
        jwt.encode({**claims, "iss": "meterline"}, "", algorithm="none"),
        "eyJhbGciOiJIUzI1NiJ9.not-base64.x",
    ):
        with pytest.raises(TokenError, match=r"^token is malformed or not issued by this gateway$"):
            issuer.verify(foreign)


def test_looks_like_jwt_by_shape() -> None:
    assert looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig")
    assert not looks_like_jwt("ml-abc.def.ghi")
    assert not looks_like_jwt("eyJonlyonepart")
