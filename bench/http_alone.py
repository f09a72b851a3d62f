"""`python -m bench.http_alone`: the HTTP server with nothing behind it, the ceiling of a server.

The engine's own server (`energy_ingest.server.serve`: uvicorn with httptools and uvloop, the
engine's guarded protocol and its limits, one worker, no access log of its own) serving a bare
ASGI application that reads each request's body and answers every POST as the engine
answers a new reading (201, `{"success":true,"status":"stored"}`), storing nothing. No
routing, no key, no decoding, no database: the most single-reading requests a second any
application on this server can answer on this machine with the bench's load generator beside
it. The single-reading target is a ratio to the naive path; this rate over the naive rate is the
highest that ratio can be on this HTTP stack.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from bench.serving import serve_until_stopped
from energy_ingest.config import Settings

_STORED = b'{"success":true,"status":"stored"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_STORED)).encode())]
_READY = b'{"status":"ready"}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, answer 201 stored (POST) or 200 ready (anything else)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    post = scope["method"] == "POST"
    body = _STORED if post else _READY
    headers = _HEADERS if post else [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 201 if post else 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C; exit 0 after a graceful shutdown."""
    parser = argparse.ArgumentParser(prog="python -m bench.http_alone", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    options = parser.parse_args(argv)
    return serve_until_stopped(app, Settings(host=options.host, port=options.port), lifespan="off")


if __name__ == "__main__":
    sys.exit(main())
