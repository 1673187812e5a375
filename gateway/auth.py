"""Who is calling: the identity an agent key or token stands for, and the directory interface
the request path authenticates through (gateway/keys/directory.py implements it over the key store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from meterline.config import Limits


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


class AgentDirectory(Protocol):
    """Synchronous and I/O-free: the request path calls it on every request."""

    def authenticate(self, authorization: str | None) -> AgentIdentity:
        """The identity behind an `Authorization: Bearer <key or token>` header, or InvalidApiKey (401)."""

    def lookup(self, key: str) -> AgentIdentity | None: ...

    def __len__(self) -> int:
        """How many keys authenticate (for readiness)."""
