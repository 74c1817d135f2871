"""The Hotmart client against the stand-in over loopback: token flow, paging, statuses, renewal."""

from __future__ import annotations

import base64

import pytest

from etl_platform.defs.sales.resources import TRANSACTION_STATUSES, HotmartResource
from etl_platform.devservers.hotmart import HotmartStandIn
from etl_platform.devservers.nvd import Fault
from etl_platform.lib.http import SourceError
from etl_platform_tests.sales.conftest import CLIENT_ID, CLIENT_SECRET, DAY0, DAY_MS

WINDOW = (DAY0, DAY0 + 10 * DAY_MS)


def client_for(server: HotmartStandIn, **options):
    resource = HotmartResource(
        api_url=server.api_url, auth_url=server.auth_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        backoff_seconds=0.01, **options,
    )
    return resource.client()


def api_requests(server: HotmartStandIn) -> list[dict]:
    return [r for r in server.requests if r["path"].endswith("/sales/history")]


def test_the_token_is_requested_with_basic_auth_and_cached(hotmart):
    client = client_for(hotmart, max_results=5)
    hotmart.generate_items(12, seed=1, start_ms=WINDOW[0], end_ms=WINDOW[1], statuses=["APPROVED"])

    pages = list(client.pages("sales/history", WINDOW, "APPROVED"))

    assert [len(p.items) for p in pages] == [5, 5, 2]
    token_calls = [r for r in hotmart.requests if r["method"] == "POST"]
    assert len(token_calls) == 1 and client.token_requests == 1
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_calls[0]["headers"]["Authorization"] == f"Basic {expected}"
    assert token_calls[0]["params"] == {
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    }
    sent = api_requests(hotmart)
    assert [r["params"].get("page_token") is None for r in sent] == [True, False, False]
    assert all(r["params"]["start_date"] == str(WINDOW[0]) and r["params"]["end_date"] == str(WINDOW[1]) for r in sent)


def test_an_expired_token_is_renewed(hotmart):
    client = client_for(hotmart)
    list(client.pages("sales/history", WINDOW))
    hotmart.expire_tokens()

    pages = list(client.pages("sales/history", WINDOW))

    assert len(pages) == 1 and client.token_requests == 2
    assert len(api_requests(hotmart)) == 3  # ok, 401, ok with the new token


def test_a_token_is_renewed_shortly_before_it_expires():
    with HotmartStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_ttl=0.2) as server:
        client = client_for(server)
        first = client.token()
        import time

        # The client's own clock is the behaviour under test (pass_time moves only the stand-in's):
        # a 0.2 s token is renewed after 0.18 s, so this short wait is all the test needs.
        time.sleep(0.2)
        assert client.token() != first
        assert len(api_requests(server)) == 0  # renewed before any 401


def test_refused_credentials_fail_clearly_without_the_secret(hotmart):
    resource = HotmartResource(
        api_url=hotmart.api_url, auth_url=hotmart.auth_url, client_id=CLIENT_ID, client_secret="wrong-secret"
    )
    with pytest.raises(SourceError, match="credentials were refused") as error:
        list(resource.client().pages("sales/history", WINDOW))
    assert "wrong-secret" not in str(error.value)


def test_every_documented_status_is_asked_so_refunds_are_seen(hotmart):
    sales = hotmart.generate_items(4, seed=3, start_ms=WINDOW[0], end_ms=WINDOW[1], statuses=["APPROVED"])
    hotmart.update_status(sales[0]["purchase"]["transaction"], "REFUNDED")

    pages = list(client_for(hotmart).window_pages("sales/history", WINDOW))

    assert [r["params"]["transaction_status"] for r in api_requests(hotmart)] == list(TRANSACTION_STATUSES)
    codes = sorted(i["purchase"]["transaction"] for p in pages for i in p.items)
    assert codes == sorted(s["purchase"]["transaction"] for s in sales)


def test_a_null_next_page_token_ends_the_listing():
    with HotmartStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, null_next_token=True) as server:
        server.generate_items(7, seed=5, start_ms=WINDOW[0], end_ms=WINDOW[1])
        pages = list(client_for(server, max_results=3).pages("sales/history", WINDOW))
    assert [len(p.items) for p in pages] == [3, 3, 1]


def test_throttling_and_server_errors_are_retried(hotmart):
    hotmart.inject(Fault.status(429, retry_after=0), times=1)
    hotmart.inject(Fault.status(503), times=1)

    pages = list(client_for(hotmart).pages("sales/history", WINDOW))

    assert len(pages) == 1 and len(api_requests(hotmart)) == 3


def test_a_malformed_page_fails_clearly(hotmart):
    hotmart.inject(Fault.malformed())
    with pytest.raises(SourceError, match="not valid JSON"):
        list(client_for(hotmart).pages("sales/history", WINDOW))
