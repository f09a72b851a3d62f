"""GET / (links as JSON, or the dashboard for a browser) and /docs served with no internet:
Swagger UI's files come from an installed package, not from a CDN."""

from __future__ import annotations

import functools
import html
from importlib import resources

from fastapi import APIRouter, Request, Response

from energy_ingest import __version__
from energy_ingest.config import Settings
from energy_ingest.health import dashboard
from energy_ingest.web.http import json_response

router = APIRouter(tags=["health"])

LINKS: dict[str, str] = {
    "docs": "/docs",
    "openapi": "/openapi.json",
    "health": "/healthz",
    "readiness": "/readyz",
    "metrics": "/metrics",
    "ingest": "/v1/ingest",
    "meterLive": "/v1/analytics/meter/{meterId}/live",
    "vehicleLive": "/v1/analytics/vehicle/{vehicleId}/live",
    "performance": "/v1/analytics/performance/{vehicleId}",
    "vehicleMeter": "/v1/vehicles/{vehicleId}/meter",
    "keys": "/v1/keys",
}

_TITLE = "Energy Ingestion Engine"


def _quality(accept: str, wanted: str) -> float:
    """The q-value the Accept header gives `wanted` (exact type, then type/*, then */*)."""
    kind = wanted.split("/")[0] + "/*"
    best: dict[str, float] = {}
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best[media.lower()] = quality
    for media in (wanted, kind, "*/*"):
        if media in best:
            return best[media]
    return 0.0


def _prefers_html(accept: str) -> bool:
    if "html" not in accept:
        return False
    page = _quality(accept, "text/html")
    return page > 0 and page > _quality(accept, "application/json")


@router.get(
    "/",
    summary="Where to go from here",
    description="Links to the documentation, the probes and the main API paths as JSON; a browser "
    "(a client preferring text/html) gets the dashboard, which signs in with an API key. No key "
    "needed for either.",
)
async def front_door(request: Request) -> Response:
    if _prefers_html(request.headers.get("accept", "")):
        settings: Settings = request.app.state.settings
        return Response(
            dashboard.page(settings.efficiency_threshold),
            media_type="text/html; charset=utf-8",
            # The page is small and names its assets by content: always the engine's current one.
            headers={"cache-control": "no-cache"},
        )
    return json_response({"name": _TITLE, "version": __version__, "links": LINKS})


# --- /docs ------------------------------------------------------------------------------------
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# No inline script, so the page's policy needs no 'unsafe-inline' for scripts.
_INIT_SCRIPT = b"""window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null
});
"""


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files("fastapi_swagger").joinpath("resources", name).read_bytes()


def _docs_page(root: str) -> bytes:
    assets = html.escape(root) + "/docs/assets"
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
        f"  <title>{_TITLE} - API</title>\n"
        f'  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">\n'
        f'  <link rel="stylesheet" href="{assets}/swagger-ui.css">\n'
        '</head>\n<body>\n  <div id="swagger-ui"></div>\n'
        f'  <script src="{assets}/swagger-ui-bundle.js"></script>\n'
        f'  <script src="{assets}/init.js"></script>\n'
        "</body>\n</html>\n"
    ).encode()


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> Response:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return Response(_docs_page(root), media_type="text/html; charset=utf-8")


@router.get("/docs/assets/{name}", include_in_schema=False)
async def docs_asset(name: str) -> Response:
    if name == "init.js":
        return Response(_INIT_SCRIPT, media_type="text/javascript; charset=utf-8")
    media_type = _ASSETS.get(name)
    if media_type is None:
        return json_response({"error": "not_found", "message": "no such file"}, 404)
    return Response(
        _asset(name), media_type=media_type, headers={"cache-control": "public, max-age=86400"}
    )
