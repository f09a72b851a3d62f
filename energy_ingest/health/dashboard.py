"""The dashboard a browser gets at `/`: one page and its script and style, files of this package.

No build step, no CDN, no library fetched at run time: the charts are SVG drawn by the page's
own script. The page is small and answered fresh; its assets carry a content hash in their URL,
so a browser may keep them a year and still never runs a stale script after an upgrade.
"""

from __future__ import annotations

import functools
import hashlib
import html
from importlib import resources

from fastapi import APIRouter, Response

from energy_ingest import __version__
from energy_ingest.web.http import json_response

router = APIRouter(tags=["health"])

ASSETS: dict[str, str] = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_LONG_CACHE = "public, max-age=31536000, immutable"


@functools.cache
def asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _digest(name: str) -> str:
    return hashlib.sha256(asset(name)).hexdigest()[:16]


@functools.cache
def page(efficiency_threshold: float) -> bytes:
    """The dashboard's HTML; the threshold is the engine's, drawn on the efficiency charts."""
    template = resources.files(__package__).joinpath("static", "index.html").read_text()
    return (
        template.replace("{js}", _digest("dashboard.js"))
        .replace("{css}", _digest("dashboard.css"))
        .replace("{threshold}", html.escape(repr(efficiency_threshold)))
        .replace("{version}", html.escape(__version__))
        .encode()
    )


@router.get("/dashboard/assets/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return json_response({"error": "not_found", "message": "no such file"}, 404)
    return Response(asset(name), media_type=media_type, headers={"cache-control": _LONG_CACHE})
