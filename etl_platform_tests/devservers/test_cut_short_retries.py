"""Every source's client against a body cut short (headers, half the body, a closed connection).

Issue #14 item 4: the cut reaches `requests` as `ChunkedEncodingError`; each client retries it like a
connection reset and hands back exactly the whole answer, or gives up with a `SourceError` naming the
source and the attempts. Each client runs as configured in production, only with tiny backoffs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from etl_platform.defs.commerce.resources import EcbResource, FakeStoreResource
from etl_platform.defs.cve.partitions import day_window
from etl_platform.defs.cve.resources import NvdResource
from etl_platform.defs.sales.resources import HotmartResource
from etl_platform.devservers import EcbStandIn, FakeStoreStandIn, NvdStandIn
from etl_platform.devservers.hotmart import HotmartStandIn
from etl_platform.devservers.nvd import Fault
from etl_platform.lib.http import SourceError
from etl_platform_tests.commerce.conftest import store  # noqa: F401 (fixture: the Fake Store as commerce runs it)

CUTS = [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")]
FAST = {"backoff_seconds": 0.01, "timeout_seconds": 5.0}
NVD_DAY = day_window("2023-10-18")  # the day of the shipped NVD samples
JUNE_WEEK = (date(2024, 6, 3), date(2024, 6, 7))
SHOES_ID = 4  # the stand-in's "Shoes" category, holding the commerce tests' products
CLIENT_ID, CLIENT_SECRET = "cut-client", "cut-secret"
SALES_WINDOW = (1_767_225_600_000, 1_767_225_600_000 + 10 * 86_400_000)  # 2026-01-01 + 10 days, epoch ms


@pytest.fixture
def hotmart() -> Iterator[HotmartStandIn]:
    with HotmartStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        server.generate_items(12, seed=4, start_ms=SALES_WINDOW[0], end_ms=SALES_WINDOW[1], statuses=["APPROVED"])
        yield server


def nvd_client(server: NvdStandIn, **options):
    return NvdResource(api_url=server.url, requests_per_window=1000, **(FAST | options)).client()


def ecb_client(server: EcbStandIn, **options):
    return EcbResource(api_url=server.url, history_url=server.history_url, **(FAST | options)).client()


def store_client(server: FakeStoreStandIn, **options):
    return FakeStoreResource(api_url=server.url, page_size=2, **(FAST | options)).client()


def hotmart_client(server: HotmartStandIn, **options):
    resource = HotmartResource(
        api_url=server.api_url, auth_url=server.auth_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        max_results=5, transaction_statuses=["APPROVED"], **(FAST | options),
    )  # fmt: skip
    return resource.client()


def nvd_page(client) -> dict:
    page = client.page(NVD_DAY, 0)
    document = json.loads(page.body)
    del document["timestamp"]  # NVD stamps every answer anew: the rest must be identical
    return document


def sales_bodies(client) -> list[bytes]:
    return [page.body for page in client.window_pages("sales/history", SALES_WINDOW)]


def sales_requests(server: HotmartStandIn) -> int:
    return sum(1 for r in server.requests if r["path"].endswith("/sales/history"))


def token_requests(server: HotmartStandIn) -> int:
    return sum(1 for r in server.requests if r["method"] == "POST")


# --------------------------------------------------------------------------- NVD


@pytest.mark.parametrize("chunked", CUTS)
def test_nvd_retries_a_page_cut_short_and_returns_it_whole(nvd, chunked):
    whole = nvd_page(nvd_client(nvd))
    nvd.inject(Fault.cut_short(chunked))

    assert nvd_page(nvd_client(nvd)) == whole
    assert len(nvd.requests) == 3  # the reference, the cut answer, the retry


def test_nvd_gives_up_on_pages_always_cut_short_with_a_source_error(nvd):
    nvd.inject(Fault.cut_short(), times=3)

    with pytest.raises(SourceError, match=r"^NVD: gave up after 3 attempts .*ChunkedEncodingError"):
        nvd_client(nvd, attempts=3).page(NVD_DAY, 0)
    assert len(nvd.requests) == 3


# --------------------------------------------------------------------------- ECB


@pytest.mark.parametrize("chunked", CUTS)
def test_ecb_retries_a_series_cut_short_and_returns_it_byte_for_byte(ecb, chunked):
    whole = ecb_client(ecb).series(*JUNE_WEEK).body
    ecb.inject(Fault.cut_short(chunked), path="/EXR")

    assert ecb_client(ecb).series(*JUNE_WEEK).body == whole
    assert len(ecb.requests) == 3


def test_ecb_retries_the_history_zip_cut_short_and_returns_it_byte_for_byte(ecb):
    ecb.inject(Fault.cut_short())

    assert ecb_client(ecb).history() == ecb.history_zip()
    assert len(ecb.requests) == 2


def test_ecb_gives_up_on_series_always_cut_short_with_a_source_error(ecb):
    ecb.inject(Fault.cut_short(), times=3)

    with pytest.raises(SourceError, match=r"^ECB: gave up after 3 attempts .*ChunkedEncodingError"):
        ecb_client(ecb, attempts=3).series(*JUNE_WEEK)
    assert len(ecb.requests) == 3


# --------------------------------------------------------------------------- Fake Store


@pytest.mark.parametrize("chunked", CUTS)
def test_store_retries_a_product_page_cut_short_and_returns_every_page_byte_for_byte(store, chunked):
    whole = store_client(store).product_pages(SHOES_ID)
    store.inject(Fault.cut_short(chunked), path="/products")

    assert store_client(store).product_pages(SHOES_ID) == whole


def test_store_retries_a_login_answer_cut_short(store):
    whole = store_client(store).product_pages(SHOES_ID)
    store.inject(Fault.cut_short(), path="/auth/login")

    client = store_client(store)

    assert client.product_pages(SHOES_ID) == whole
    assert client.auth_events["login"] == 1  # one login, its POST sent twice
    assert sum(1 for r in store.requests if r["path"] == "/api/v1/auth/login") == 3


def test_store_gives_up_on_pages_always_cut_short_with_a_source_error(store):
    store.inject(Fault.cut_short(), times=3, path="/products")

    with pytest.raises(SourceError, match=r"^Fake Store: gave up after 3 attempts .*ChunkedEncodingError"):
        store_client(store, attempts=3).product_pages(SHOES_ID)
    assert sum(1 for r in store.requests if r["path"] == "/api/v1/products") == 3


# --------------------------------------------------------------------------- Hotmart


@pytest.mark.parametrize("chunked", CUTS)
def test_hotmart_retries_a_sales_page_cut_short_and_returns_every_page_byte_for_byte(hotmart, chunked):
    whole = sales_bodies(hotmart_client(hotmart))
    hotmart.inject(Fault.cut_short(chunked))

    assert sales_bodies(hotmart_client(hotmart)) == whole
    assert sales_requests(hotmart) == 2 * len(whole) + 1


@pytest.mark.parametrize("chunked", CUTS)
def test_hotmart_retries_a_token_answer_cut_short(hotmart, chunked):
    whole = sales_bodies(hotmart_client(hotmart))
    hotmart.inject(Fault.cut_short(chunked), token_endpoint=True)

    client = hotmart_client(hotmart)

    assert sales_bodies(client) == whole
    assert client.token_requests == 2


def test_hotmart_gives_up_on_sales_pages_always_cut_short_with_a_source_error(hotmart):
    hotmart.inject(Fault.cut_short(), times=3)

    with pytest.raises(SourceError, match=r"^Hotmart: gave up after 3 attempts .*ChunkedEncodingError"):
        sales_bodies(hotmart_client(hotmart, attempts=3))
    assert sales_requests(hotmart) == 3


def test_hotmart_gives_up_on_token_answers_always_cut_short_with_a_source_error(hotmart):
    hotmart.inject(Fault.cut_short(), times=3, token_endpoint=True)

    given_up = r"^Hotmart token endpoint .*: gave up after 3 attempts \(ChunkedEncodingError\)"
    with pytest.raises(SourceError, match=given_up):
        hotmart_client(hotmart, attempts=3).token()
    assert token_requests(hotmart) == 3
