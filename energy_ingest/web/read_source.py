"""The `Read-Source` header: which server an answer was read from, when a replica is configured.

The read-connection dependency notes it in the request's state; this middleware adds it to the
answer's head (endpoints return their own Response objects, so a dependency cannot).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATE_KEY = "read_source"


class ReadSourceMiddleware:
    """Pure ASGI: `Read-Source: replica; staleness=…` or `primary; reason=…` on read answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_source(message: Message) -> None:
            if message["type"] == "http.response.start":
                source = state.get(STATE_KEY)
                if source is not None:
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"read-source", source.encode("latin-1")),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_source)
