"""POST /v1/auth/token: an agent key in, a short-lived signed token (JWT) out.

Body (optional): {"expires_in": seconds}, capped at 3600 and at the key's own end. The token is
accepted wherever the key is, until it expires or its key is revoked or rotated out.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import GatewayNotReady, InvalidApiKey, InvalidRequest
from gateway.keys.tokens import MAX_TOKEN_SECONDS, looks_like_jwt
from gateway.routes.admin import JsonBody, parse_body, runtime


class TokenRequest(JsonBody):
    expires_in: int | None = Field(default=None, gt=0)


async def issue_token(request: Request) -> Response:
    keys = runtime(request)
    scheme, _, key = (request.headers.get("authorization") or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise InvalidApiKey("Missing API key. Send the agent key as 'Authorization: Bearer <agent key>'.")
    if looks_like_jwt(key):
        raise InvalidRequest("Exchange an agent key for a token, not a token.", code="key_required")
    body = await parse_body(request, TokenRequest)
    match = keys.directory.match_key(key)
    if match is None:
        raise InvalidApiKey("Incorrect, expired or revoked API key provided.")
    if match.key_id is None:
        raise InvalidRequest("The master key cannot be exchanged for a token; use an agent key.", code="key_required")
    if keys.services is None:
        raise GatewayNotReady("The gateway is starting; the key store is not open yet.")
    issued = keys.services.tokens.issue(match.identity.agent_id, match.key_id, body.expires_in, match.valid_until)
    return JSONResponse(
        {
            "access_token": issued.token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "expires_at": issued.expires_at,
            "max_expires_in": MAX_TOKEN_SECONDS,
        }
    )
