"""`vault://MOUNT/PATH#field`: HashiCorp Vault's KV version 2 over its HTTP API (httpx).

Reads `GET /v1/MOUNT/data/PATH` with `X-Vault-Token` (and `X-Vault-Namespace`); the version is
the KV metadata version. Auth (config `secrets.vault.auth`):
- `token`: `secrets.vault.token`, else `VAULT_TOKEN`; used as it is.
- `approle`: `POST /v1/auth/approle/login` with `role_id` and `secret_id`.
- `kubernetes`: `POST /v1/auth/kubernetes/login` with `role` and the service-account JWT.
A login token is renewed (`POST /v1/auth/token/renew-self`) when most of its lease is gone,
and replaced by a new login when it has expired, cannot be renewed, or Vault answers 403.
Settings may themselves be `os.environ/` or `file://` references.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from meterline.config import VaultConfig
from meterline.secrets.base import SecretResolutionError, SecretVersion, now
from meterline.secrets.env import EnvBackend
from meterline.secrets.fields import field_of
from meterline.secrets.file import FileBackend
from meterline.secrets.reference import Reference, parse_reference

RENEW_WHEN_LEFT = 0.2
"""Renew a login token once less than this share of its lease is left."""


def _errors(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    text = "; ".join(str(e) for e in errors if isinstance(e, str))
    return f"Vault answered HTTP {response.status_code}" + (f": {text}" if text else "")


class VaultBackend:
    name = "vault"

    def __init__(
        self,
        settings: VaultConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings or VaultConfig()
        self._clock = clock
        self._transport = transport
        self._client: httpx.Client | None = None
        self._token: str | None = None
        self._lease_s = 0.0
        self._expires_at: float | None = None
        self._renewable = False
        self._lock = threading.Lock()
        self.logins = 0
        """How many times this backend logged in (AppRole or Kubernetes)."""

    # -- settings -------------------------------------------------------------------------
    def _setting(self, reference: Reference, name: str, value: str | None, env: str | None = None) -> str | None:
        if value is None:
            return os.environ.get(env) if env else None
        setting = parse_reference(value)
        try:
            if setting.backend == "env":
                return EnvBackend().fetch(setting).value
            if setting.backend == "file":
                return FileBackend().fetch(setting).value
        except SecretResolutionError as exc:
            raise reference.error(f"secrets.vault.{name} ({setting.display}): {exc.reason}") from None
        if setting.is_literal:
            return value
        raise reference.error(f"secrets.vault.{name} may only be a literal, os.environ/ or file:// reference")

    def _http(self, reference: Reference) -> httpx.Client:
        if self._client is None:
            address = self._setting(reference, "address", self._settings.address, "VAULT_ADDR")
            if not address:
                raise reference.error("no Vault address (secrets.vault.address or VAULT_ADDR)")
            self._client = httpx.Client(
                base_url=address.rstrip("/"), timeout=self._settings.timeout_seconds, transport=self._transport
            )
        return self._client

    def _headers(self, reference: Reference, token: str | None) -> dict[str, str]:
        headers = {"X-Vault-Request": "true"}
        if token is not None:
            headers["X-Vault-Token"] = token
        namespace = self._setting(reference, "namespace", self._settings.namespace, "VAULT_NAMESPACE")
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        return headers

    def _send(
        self, reference: Reference, method: str, url: str, token: str | None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        client = self._http(reference)
        try:
            return client.request(method, url, headers=self._headers(reference, token), json=body)
        except httpx.HTTPError as exc:
            raise reference.error(f"cannot reach Vault at {client.base_url} ({type(exc).__name__})") from None

    # -- auth -----------------------------------------------------------------------------
    @property
    def _logs_in(self) -> bool:
        return self._settings.auth != "token"

    def _login(self, reference: Reference) -> None:
        s = self._settings
        mount = (s.auth_mount or s.auth).strip("/")
        if s.auth == "approle":
            role_id = self._setting(reference, "role_id", s.role_id)
            secret_id = self._setting(reference, "secret_id", s.secret_id)
            if not role_id:
                raise reference.error("AppRole auth needs secrets.vault.role_id")
            body: dict[str, Any] = {"role_id": role_id}
            if secret_id:
                body["secret_id"] = secret_id
        else:
            if not s.role:
                raise reference.error("Kubernetes auth needs secrets.vault.role")
            jwt = self._setting(reference, "jwt_path", f"file://{s.jwt_path}")
            body = {"role": s.role, "jwt": jwt}
        response = self._send(reference, "POST", f"/v1/auth/{mount}/login", None, body)
        if response.status_code != 200:
            raise reference.error(f"{s.auth} login failed: {_errors(response)}")
        self._take_auth(reference, response)
        self.logins += 1

    def _take_auth(self, reference: Reference, response: httpx.Response) -> None:
        try:
            auth = response.json()["auth"]
            token = str(auth["client_token"])
            lease = float(auth.get("lease_duration") or 0)
        except (ValueError, KeyError, TypeError):
            raise reference.error("Vault's login answer has no auth.client_token") from None
        self._token = token
        self._lease_s = lease
        self._expires_at = self._clock() + lease if lease > 0 else None
        self._renewable = bool(auth.get("renewable"))

    def _renew(self, reference: Reference) -> bool:
        response = self._send(reference, "POST", "/v1/auth/token/renew-self", self._token, {})
        if response.status_code != 200:
            return False
        self._take_auth(reference, response)
        return True

    def _current_token(self, reference: Reference) -> str:
        if not self._logs_in:
            token = self._setting(reference, "token", self._settings.token, "VAULT_TOKEN")
            if not token:
                raise reference.error("token auth needs secrets.vault.token or VAULT_TOKEN")
            return token
        if self._token is None:
            self._login(reference)
        elif self._expires_at is not None:
            left = self._expires_at - self._clock()
            expired = left <= 0
            if expired or (left < self._lease_s * RENEW_WHEN_LEFT and not (self._renewable and self._renew(reference))):
                self._login(reference)
        assert self._token is not None
        return self._token

    # -- KV v2 ----------------------------------------------------------------------------
    def fetch(self, reference: Reference) -> SecretVersion:
        mount, _, path = reference.target.strip("/").partition("/")
        url = f"/v1/{mount}/data/{path}"
        if version := reference.params.get("version"):
            url += f"?version={version}"
        with self._lock:
            response = self._send(reference, "GET", url, self._current_token(reference))
            if response.status_code == 403 and self._logs_in:
                self._login(reference)  # an expired or revoked token: log in again, once
                response = self._send(reference, "GET", url, self._token)
        if response.status_code == 404:
            raise reference.error(f"no secret or version at {mount}/data/{path} (HTTP 404)")
        if response.status_code != 200:
            raise reference.error(_errors(response))
        try:
            payload = response.json()["data"]
            data = payload["data"]
            metadata = payload.get("metadata") or {}
        except (ValueError, KeyError, TypeError):
            raise reference.error("Vault's answer is not a KV version 2 secret") from None
        if not isinstance(data, dict):
            raise reference.error("the secret has been deleted or destroyed")
        if reference.field is None:
            if len(data) != 1:
                known = ", ".join(sorted(str(k) for k in data)) or "none"
                raise reference.error(f"name a field with #field (fields: {known})")
            reference = Reference(reference.raw, reference.backend, reference.target, next(iter(data)))
        version = metadata.get("version")
        return SecretVersion(
            field_of(reference, data), str(version) if version is not None else None, now(), _created(metadata)
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _created(metadata: dict[str, Any]) -> dt.datetime | None:
    text = metadata.get("created_time")
    if not isinstance(text, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")  # Vault writes nanoseconds
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
