"""The dashboard's page and files as served: engine files only, no inline script, the policy,
long-cached assets named by content, and the JSON front door unchanged for API clients."""

from __future__ import annotations

import re

import httpx

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_browsers_get_the_dashboard_and_api_clients_the_links(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/", headers={"Accept": BROWSER})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert page.text.count('type="password"') == 1
    assert '<label for="api-key">API key</label>' in page.text
    # A field without a name is never submitted: the key cannot land in a URL or a body.
    field = re.search(r'<input type="password"[^>]*>', page.text)
    assert field is not None
    assert "name=" not in field.group(0)
    assert 'data-efficiency-threshold="0.85"' in page.text
    links = await client.get("/", headers={"Accept": "application/json"})
    assert links.headers["content-type"] == "application/json"
    assert links.json()["links"]["docs"] == "/docs"


async def test_the_page_loads_only_engine_files_under_a_self_only_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/", headers={"Accept": BROWSER})
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    assert "http" not in policy  # no other origin, no CDN
    # Nothing inline: every script is a file of the engine.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)
    assert not re.search(r"\son[a-z]+=", page.text)  # no inline event handlers
    references = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assets = [reference for reference in references if reference.startswith("/dashboard/")]
    assert len(assets) == 2, references
    assert all(reference.startswith(("/", "data:")) for reference in references), references
    for reference in assets:
        answer = await client.get(reference)
        assert answer.status_code == 200, reference
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["content-type"].startswith(("text/javascript", "text/css"))
        assert len(answer.content) > 1000
    assert (await client.get("/dashboard/assets/index.html")).status_code == 404
    assert (await client.get("/dashboard/assets/..%2Fdashboard.py")).status_code == 404


async def test_the_script_keeps_the_key_out_of_urls_and_storage_that_outlives_the_tab(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/", headers={"Accept": BROWSER})
    script_path = re.search(r'src="(/dashboard/assets/dashboard\.js[^"]*)"', page.text)
    assert script_path is not None
    script = (await client.get(script_path.group(1))).text
    assert "sessionStorage" in script
    assert "localStorage" not in script
    assert "document.cookie" not in script
    assert '"Bearer " + key' in script
    assert "http://" not in script.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in script
