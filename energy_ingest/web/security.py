"""Browser-facing protection of every answer: security headers, and with authentication off, the
Host and Origin checks that keep web pages (DNS rebinding, cross-site forms) out of a loopback
engine."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from energy_ingest.config import Settings, is_loopback
from energy_ingest.web.http import encode_json

# Precomputed once: ingest is the hot path, and these are appended as they are.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
# JSON answers load nothing and may be framed by nothing.
API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
# The pages (/ and /docs) load their scripts, styles and the schema from the engine only; Swagger
# UI sets inline styles and draws icons from data: URIs.
PAGE_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'"
)
_API_HEADERS = [*SECURITY_HEADERS, (b"content-security-policy", API_POLICY)]
_PAGE_HEADERS = [*SECURITY_HEADERS, (b"content-security-policy", PAGE_POLICY)]
# Answers of the API may hold secrets (a new key) or live state: no cache may keep them.
_NO_STORE = (b"cache-control", b"no-store")


def raw_security_headers() -> bytes:
    """The same headers as HTTP/1.1 lines, for answers the server writes before any app runs."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in _API_HEADERS)


def _host_port(host: str) -> tuple[str, str | None]:
    """Split a Host header value; IPv6 literals keep their brackets."""
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else None
        return name, port
    name, colon, port = host.rpartition(":")
    if not colon:
        return host, None
    return name, port


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class WebSecurityMiddleware:
    """Pure ASGI: security headers on every answer, `Cache-Control: no-store` under /v1, and
    with authentication off the Host (400) and cross-site (403) refusals.

    With authentication on, the Authorization header already makes a browser send a CORS
    preflight that the engine never grants, so a web page can neither write nor read.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.check_browser = not settings.auth_enabled
        bound = settings.host.lower()
        names = {"127.0.0.1", "localhost", "[::1]", _bracketed(bound)}
        if not is_loopback(bound):
            names.discard(_bracketed(bound))  # never reached: auth off requires loopback
        self.allowed_names = frozenset(names)
        self.port = str(settings.port)
        any_port = settings.port == 0  # an ephemeral port: the name alone decides
        self.any_port = any_port
        origins = set()
        for name in names:
            origins.add(f"http://{name}:{self.port}")
            if settings.port == 80:
                origins.add(f"http://{name}")
        self.allowed_origins = frozenset(origins)

    def _allowed_host(self, host: str) -> bool:
        name, port = _host_port(host.lower())
        if name not in self.allowed_names:
            return False
        return port is None or self.any_port or port == self.port

    def _allowed_origin(self, origin: str) -> bool:
        origin = origin.lower()
        if origin in self.allowed_origins:
            return True
        if self.any_port and origin.startswith("http://"):
            return self._allowed_host(origin.removeprefix("http://"))
        return False

    def _refusal(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, str, str] | None:
        host = origin = fetch_site = None
        for name, value in headers:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1")
        if host is not None and not self._allowed_host(host):
            return (
                400,
                "host_not_allowed",
                "authentication is off, so this engine answers only requests addressed to its "
                "loopback address (Host header)",
            )
        if fetch_site == "cross-site" or (origin is not None and not self._allowed_origin(origin)):
            return (
                403,
                "cross_site_request",
                "authentication is off, so this engine refuses requests sent by other web sites",
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/v1")
        if self.check_browser:
            refusal = self._refusal(scope["headers"])
            if refusal is not None:
                status, code, message = refusal
                body = encode_json({"error": code, "message": message})
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *_API_HEADERS,
                            *((_NO_STORE,) if api else ()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                page = False
                for name, value in headers:
                    if name == b"content-type":
                        page = value.startswith(b"text/html")
                        break
                headers += _PAGE_HEADERS if page else _API_HEADERS
                if api:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
