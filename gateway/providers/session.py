"""The pooled HTTP client every direct forward owns: opened at start, closed at shutdown."""

from __future__ import annotations

from gateway.providers.h1 import HttpClient


class SessionOwner:
    def __init__(self) -> None:
        self._client: HttpClient | None = None

    async def start(self) -> None:
        self._client = HttpClient()

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> HttpClient:
        assert self._client is not None, "start() first"
        return self._client
