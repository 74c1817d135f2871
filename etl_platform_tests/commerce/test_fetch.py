"""The source clients alone, over loopback HTTP: retries, empty windows, paging, configuration."""

from __future__ import annotations

from datetime import date

import pytest

from etl_platform.defs.commerce.parse import parse_sdmx_csv, store_items
from etl_platform.defs.commerce.resources import EcbResource, FakeStoreResource, StoreAuthError
from etl_platform.devservers.nvd import Fault
from etl_platform_tests.commerce.conftest import SHOES, fast

SHOES_ID = 4


def ecb_client(ecb, **options):
    return fast(EcbResource, api_url=f"{ecb.root_url}/service/data", history_url=ecb.history_url, **options).client()


def test_ecb_throttling_and_server_errors_are_retried(ecb):
    ecb.inject(Fault.status(429, retry_after=0))
    ecb.inject(Fault.status(503))

    answer = ecb_client(ecb).series(date(2024, 6, 3), date(2024, 6, 7))

    assert answer.found
    assert len(parse_sdmx_csv(answer.body)) == 5
    assert len(ecb.requests) == 3


def test_an_ecb_window_without_observations_is_an_empty_answer_not_an_error(ecb):
    answer = ecb_client(ecb).series(date(2010, 1, 1), date(2010, 1, 14))

    assert not answer.found
    assert answer.body == b"No results found."


def test_store_products_are_paged_with_offset_and_limit_until_a_short_page(store):
    client = fast(FakeStoreResource, api_url=store.url, page_size=2).client()

    pages = client.product_pages(SHOES_ID)

    assert [p["id"] for p in store_items(pages)] == SHOES
    offsets = [r["params"]["offset"] for r in store.requests if r["path"] == "/api/v1/products"]
    assert offsets == ["0", "2", "4"]


def test_a_configured_email_without_a_password_is_refused_before_any_request(store, monkeypatch):
    monkeypatch.setenv("STORE_USER_EMAIL", "someone@example.com")
    monkeypatch.delenv("STORE_USER_PASSWORD", raising=False)

    with pytest.raises(StoreAuthError, match="STORE_USER_PASSWORD is not set"):
        fast(FakeStoreResource, api_url=store.url).client()

    assert store.requests == []
