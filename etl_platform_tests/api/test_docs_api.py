"""What a newcomer reads first: the documentation pages, offline, and what the API tells them."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from etl_platform.api import create_app
from etl_platform.api.tables import READABLE, WRITES_DISABLED


class _References(HTMLParser):
    """Every `src` and `href` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.fixture
def api(sqlite_url, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.delenv("ETL_API_TOKEN", raising=False)
    with TestClient(create_app(sqlite_url)) as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_app_itself(api, page):
    response = api.get(page)
    assert response.status_code == 200
    parser = _References()
    parser.feed(response.text)

    scripts = [url for url in parser.urls if url.endswith(".js")]
    assert scripts, response.text  # the page's UI is a script
    for url in parser.urls:
        assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
        assert api.get(url).status_code == 200, url
    assert "cdn" not in response.text.lower() and "fonts.googleapis" not in response.text
    assert api.get("/openapi.json").status_code == 200


def test_a_write_without_a_configured_token_says_writes_are_disabled(api):
    response = api.post(
        "/api/v1/tables/departments/rows",
        json={"rows": [{"id": 1, "department": "Sales"}]},
        headers={"Authorization": "Bearer anything"},
    )

    assert response.status_code == 401
    assert response.json()["detail"] == WRITES_DISABLED
    assert "ETL_API_TOKEN is not set" in WRITES_DISABLED


def test_a_wrong_token_is_told_apart_from_writes_disabled(api, monkeypatch):
    monkeypatch.setenv("ETL_API_TOKEN", "the-right-one")
    response = api.post(
        "/api/v1/tables/departments/rows",
        json={"rows": [{"id": 1, "department": "Sales"}]},
        headers={"Authorization": "Bearer a-wrong-one"},
    )

    assert response.status_code == 401
    assert response.json()["detail"] == "missing or invalid bearer token"


def test_openapi_lists_the_tables_get_serves(api):
    operation = api.get("/openapi.json").json()["paths"]["/api/v1/tables/{table}"]["get"]
    (table,) = [p for p in operation["parameters"] if p["name"] == "table"]

    assert table["schema"]["enum"] == list(READABLE)
    assert all(name in table["description"] for name in READABLE)
