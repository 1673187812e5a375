"""With `telemetry.spool_flush_ms: 0`, a response's last byte waits until its usage record is
fsync'd in the spool, so a client that saw the whole answer knows it is in the ledger's path."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.telemetry.sink import TelemetrySink


class DurableResponses:
    def __init__(self, app: ASGIApp, sink: TelemetrySink) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.sink.sync_commit:
            await self.app(scope, receive, send)
            return

        async def send_after_commit(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await self.sink.durable()
            await send(message)

        await self.app(scope, receive, send_after_commit)
