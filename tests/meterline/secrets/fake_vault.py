"""A small local Vault for tests, following Vault's documented HTTP API for what Meterline uses:
KV version 2 read (`GET /v1/MOUNT/data/PATH[?version=N]`), AppRole and Kubernetes login
(`POST /v1/auth/{approle,kubernetes}/login`) and `POST /v1/auth/token/renew-self`. Tokens go in
`X-Vault-Token`; a namespace, when set, must come in `X-Vault-Namespace`. An unknown, revoked
or expired token gets Vault's `403 {"errors": ["permission denied"]}`."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CREATED = "2026-01-02T03:04:05.123456789Z"


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeVault:
    namespace: str | None = None
    lease_duration: int = 1200
    tokens: set[str] = field(default_factory=lambda: {"root-token"})
    approles: dict[str, str] = field(default_factory=dict)
    """role_id -> secret_id"""
    kubernetes: dict[str, str] = field(default_factory=dict)
    """role -> the service-account JWT it accepts"""
    kv: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """"MOUNT/PATH" -> versions (1-based) of the secret's data"""
    requests: list[Seen] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, path: str, data: dict[str, Any]) -> int:
        with self._lock:
            self.kv.setdefault(path, []).append(data)
            return len(self.kv[path])

    def revoke_all(self) -> None:
        with self._lock:
            self.tokens.clear()

    def _denied(self, request: Request) -> JSONResponse | None:
        if self.namespace is not None and request.headers.get("x-vault-namespace") != self.namespace:
            return JSONResponse({"errors": ["permission denied"]}, 403)
        if request.headers.get("x-vault-token") not in self.tokens:
            return JSONResponse({"errors": ["permission denied"]}, 403)
        return None

    async def _seen(self, request: Request) -> Any:
        body = await request.json() if request.method == "POST" else None
        self.requests.append(
            Seen(request.method, request.url.path, request.url.query, dict(request.headers.items()), body)
        )
        return body

    def _auth(self, token: str | None = None) -> JSONResponse:
        with self._lock:
            token = token or f"hvs.token-{next(self._ids)}"
            self.tokens.add(token)
        auth = {
            "client_token": token,
            "accessor": "accessor",
            "policies": ["default", "meterline"],
            "token_policies": ["default", "meterline"],
            "metadata": {},
            "lease_duration": self.lease_duration,
            "renewable": True,
        }
        return JSONResponse({"request_id": "r", "lease_id": "", "renewable": False, "data": None, "auth": auth})

    async def read(self, request: Request) -> JSONResponse:
        await self._seen(request)
        if (denied := self._denied(request)) is not None:
            return denied
        path = f"{request.path_params['mount']}/{request.path_params['path']}"
        versions = self.kv.get(path)
        wanted = int(request.query_params.get("version") or len(versions or []))
        if not versions or not 1 <= wanted <= len(versions):
            return JSONResponse({"errors": []}, 404)
        metadata = {
            "created_time": CREATED,
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": wanted,
        }
        data = {"data": versions[wanted - 1], "metadata": metadata}
        return JSONResponse({"request_id": "r", "lease_id": "", "renewable": False, "lease_duration": 0, "data": data})

    async def approle_login(self, request: Request) -> JSONResponse:
        body = await self._seen(request)
        if self.approles.get(body.get("role_id")) != body.get("secret_id"):
            return JSONResponse({"errors": ["invalid role or secret ID"]}, 400)
        return self._auth()

    async def kubernetes_login(self, request: Request) -> JSONResponse:
        body = await self._seen(request)
        if self.kubernetes.get(body.get("role")) != body.get("jwt"):
            return JSONResponse({"errors": ["permission denied"]}, 403)
        return self._auth()

    async def renew_self(self, request: Request) -> JSONResponse:
        await self._seen(request)
        if (denied := self._denied(request)) is not None:
            return denied
        return self._auth(request.headers["x-vault-token"])

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/auth/approle/login", self.approle_login, methods=["POST"]),
                Route("/v1/auth/kubernetes/login", self.kubernetes_login, methods=["POST"]),
                Route("/v1/auth/token/renew-self", self.renew_self, methods=["POST"]),
                Route("/v1/{mount}/data/{path:path}", self.read, methods=["GET"]),
            ]
        )
