"""Who may write to the collector: principals known by bearer token, each with scopes.

    usage   may write usage records (logs with event name `meterline.usage`): the gateways
    spans   may write spans, and logs that are not usage records: agents, OpenTelemetry SDKs

A request without a token, or with one no principal holds, is refused whole (HTTP 401, gRPC
UNAUTHENTICATED); spans from a principal without `spans` likewise (403, PERMISSION_DENIED).
Usage records from a principal without `usage` are refused one by one and counted in the
response's partial success, so that principal's other logs still go through.

Tokens are secret references (`collector.ingest_tokens[].token`), kept live: a refresh that
brings a new value replaces the old one, and a token that matches nothing starts a refresh (at
most one per 10 s), so a token rotated in the secrets manager works once the collector has read
it. Presented tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every
principal, so neither the length nor which principal matched shows in the timing. No token is
ever logged or returned; refusals name the principal, never the token.

With no tokens configured every request is the `anonymous` principal with both scopes; the
bind rule (serve only on loopback unless `collector.allow_unauthenticated`) is `server.py`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
from dataclasses import dataclass

from collector.decode import DecodedBatch
from collector.errors import PermissionDenied, Unauthenticated
from collector.export import LOGS, TRACES, Signal
from collector.pipeline import IngestResult, Pipeline
from collector.settings import CollectorSettings
from meterline.config import ConfigError
from meterline.secrets import LiveSecret, SecretRegistry, SecretResolutionError, SecretVersion

log = logging.getLogger(__name__)

USAGE = "usage"
SPANS = "spans"
MIN_TOKEN_CHARS = 20
"""A shorter resolved token is refused at start: it could be guessed."""
_REFRESH_UNKNOWN_S = 10.0


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    scopes: frozenset[str]


ANONYMOUS = Principal("anonymous", frozenset({USAGE, SPANS}))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class _Holder:
    """One configured principal and the digest of its current token."""

    def __init__(self, principal: Principal, secret: LiveSecret) -> None:
        self.principal = principal
        self.secret = secret
        self.digest = _digest(secret.reveal())
        secret.on_change(self._changed)

    def _changed(self, new: SecretVersion, old: SecretVersion) -> None:
        self.digest = _digest(new.value)
        log.info("collector: principal %r has a new token (version %s)", self.principal.name, new.version)


async def _refuse_usage(principal: Principal, pipeline: Pipeline, batch: DecodedBatch) -> IngestResult:
    refused = batch.accepted + batch.rejected
    message = (
        f"{refused} usage record(s) refused: principal {principal.name!r} may not write usage records "
        f"(it lacks scope {USAGE!r})"
        if refused
        else ""
    )
    return IngestResult(0, 0, refused, message)


class IngestAuth:
    """Bearer token -> Principal -> the Signal that principal's export may use."""

    def __init__(self, holders: list[_Holder], registry: SecretRegistry | None = None) -> None:
        self._holders = holders
        self._registry = registry
        self._logs_without_usage: dict[str, Signal] = {}
        for holder in holders:
            principal = holder.principal

            async def ingest(pipeline: Pipeline, batch: DecodedBatch, principal: Principal = principal) -> IngestResult:
                return await _refuse_usage(principal, pipeline, batch)

            self._logs_without_usage[principal.name] = dataclasses.replace(LOGS, ingest=ingest)

    @classmethod
    def open(cls, settings: CollectorSettings, source: str = "meterline.yaml") -> IngestAuth:
        """Resolve every principal's token now. A reference that cannot be resolved raises
        SecretResolutionError naming its field; a token too short or held by two principals
        raises ConfigError naming the field (never the token)."""
        if not settings.ingest_tokens:
            return cls([])
        registry = SecretRegistry(settings.secrets)
        holders: list[_Holder] = []
        try:
            seen: dict[bytes, str] = {}
            for index, entry in enumerate(settings.ingest_tokens):
                field = f"collector.ingest_tokens[{index}].token"
                try:
                    secret = registry.live(entry.token)
                except SecretResolutionError as exc:
                    raise SecretResolutionError(exc.reference, exc.backend, f"{exc.reason} (at {field})") from None
                if len(secret.reveal()) < MIN_TOKEN_CHARS:
                    raise ConfigError(source, field, f"the token is shorter than {MIN_TOKEN_CHARS} characters")
                holder = _Holder(Principal(entry.name, frozenset(entry.scopes)), secret)
                if holder.digest in seen:
                    twin = seen[holder.digest]
                    raise ConfigError(source, field, f"principal {entry.name!r} has the same token as {twin!r}")
                seen[holder.digest] = entry.name
                holders.append(holder)
        except BaseException:
            registry.close()
            raise
        return cls(holders, registry)

    @property
    def required(self) -> bool:
        """True when requests must carry a token (principals are configured)."""
        return bool(self._holders)

    async def start(self) -> None:
        if self._registry is not None:
            await self._registry.start()

    async def stop(self) -> None:
        if self._registry is not None:
            await self._registry.stop()

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal an `Authorization` header (HTTP) or `authorization` metadata (gRPC)
        names; raises Unauthenticated."""
        if not self._holders:
            return ANONYMOUS
        if authorization is None:
            raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header is not a bearer token")
        presented = _digest(token)
        found: Principal | None = None
        for holder in self._holders:  # every one, match or not: the timing names no principal
            if hmac.compare_digest(presented, holder.digest):
                found = holder.principal
        if found is None:
            for holder in self._holders:  # perhaps rotated in the secrets manager and not read yet
                holder.secret.refresh_soon(_REFRESH_UNKNOWN_S)
            raise Unauthenticated("unknown bearer token")
        return found

    def authorize(self, principal: Principal, signal: Signal) -> Signal:
        """The signal `principal` may export through; raises PermissionDenied for spans
        without scope `spans`. Logs from a principal without `usage` go through a signal that
        refuses their usage records in partial success."""
        if signal.name == TRACES.name:
            if SPANS not in principal.scopes:
                raise PermissionDenied(f"principal {principal.name!r} may not write spans (it lacks scope {SPANS!r})")
            return signal
        if USAGE in principal.scopes:
            return signal
        return self._logs_without_usage[principal.name]
