"""/docs and /redoc work with no network: every script, style sheet and the OpenAPI document
they load comes from the API itself."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.store.sqlite import SqliteStore


class References(HTMLParser):
    """The URLs a page loads: scripts, style sheets, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def referenced(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    # Swagger UI takes the OpenAPI document's URL in its script; ReDoc in an attribute.
    for quote in ("'", '"'):
        parser.urls += [part.split(quote)[0] for part in html.split(f"url: {quote}")[1:]]
    parser.urls += [part.split('"')[0] for part in html.split('spec-url="')[1:]]
    return parser.urls


@pytest.fixture
def api(settings, redis_client, tmp_path: Path) -> TestClient:
    return TestClient(create_app(settings, store=SqliteStore(tmp_path / "store.db"), client=redis_client))


@pytest.mark.parametrize(("page", "needs"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_the_docs_load_only_what_the_api_serves(api, page, needs):
    response = api.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = referenced(response.text)
    assert any(url.endswith(needs) for url in urls) and "/openapi.json" in urls, urls
    for url in urls:
        parsed = urlparse(url)
        assert not parsed.netloc, f"{page} loads {url} from another host"
        asset = api.get(parsed.path)
        assert asset.status_code == 200 and len(asset.content) > 0, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"]
