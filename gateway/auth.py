"""Agent keys -> agent identity.

Keys come from the config's `agents:` section (a literal or an `os.environ/NAME` reference).
Only a keyed hash of each key is held, so a heap dump or a log of this object shows no key.
Issue #4 replaces the config-only directory with a key store behind the same `lookup`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from gateway.errors import InvalidApiKey
from meterline.config import AgentConfig, Limits
from meterline.secret_refs import resolve


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    agent_id: str
    team: str
    project: str | None = None
    key_alias: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    models: frozenset[str] | None = None
    """Model groups this agent may call; None means every group."""
    limits: Limits = field(default_factory=Limits)
    """The agent's own limits; its team's limits apply too (see gateway/quotas)."""


MASTER_AGENT_ID = "master"


class AgentDirectory:
    def __init__(self, agents: list[AgentConfig], master_key: str | None = None) -> None:
        # A per-process random pepper: the hashes are only for in-memory lookup.
        self._pepper = secrets.token_bytes(32)
        self._by_hash: dict[bytes, AgentIdentity] = {}
        for agent in agents:
            if agent.key is None:
                continue
            identity = AgentIdentity(
                agent_id=agent.id,
                team=agent.team,
                project=agent.project,
                key_alias=f"{agent.id}-config",
                tags=dict(agent.tags),
                models=frozenset(agent.models) if agent.models is not None else None,
                limits=agent.limits,
            )
            self._by_hash[self._hash(resolve(agent.key))] = identity
        if master_key:
            # LiteLLM-proxy compatibility: a config with only a master key still serves requests,
            # billed to the `master` identity.
            self._by_hash[self._hash(resolve(master_key))] = AgentIdentity(
                agent_id=MASTER_AGENT_ID, team="admin", key_alias="master-key"
            )

    def _hash(self, key: str) -> bytes:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).digest()

    def __len__(self) -> int:
        return len(self._by_hash)

    def lookup(self, key: str) -> AgentIdentity | None:
        return self._by_hash.get(self._hash(key))

    def authenticate(self, authorization: str | None) -> AgentIdentity:
        """The identity behind an `Authorization: Bearer <key>` header, or InvalidApiKey (401)."""
        if not authorization:
            raise InvalidApiKey("Missing API key. Send it as 'Authorization: Bearer <agent key>'.")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise InvalidApiKey("Malformed Authorization header. Expected 'Bearer <agent key>'.")
        identity = self.lookup(key)
        if identity is None:
            raise InvalidApiKey("Incorrect API key provided.")
        return identity
