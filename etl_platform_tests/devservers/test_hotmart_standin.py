"""The Hotmart sales API stand-in, exercised over real loopback HTTP with requests."""

from __future__ import annotations

import base64

import pytest
import requests

from etl_platform.devservers.hotmart import HotmartStandIn, recorded_items
from etl_platform.devservers.nvd import Fault

CLIENT_ID, CLIENT_SECRET = "my-id", "my-secret"
DAY_MS = 86_400_000
WINDOW_START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def hotmart():
    with HotmartStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        yield server


def get_token(server: HotmartStandIn, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> requests.Response:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return requests.post(
        server.auth_url,
        params={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )


def history(server: HotmartStandIn, token: str, **params) -> requests.Response:
    return requests.get(
        f"{server.api_url}/sales/history",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def all_pages(server: HotmartStandIn, token: str, **params) -> list[dict]:
    pages, page_token = [], None
    while True:
        query = dict(params, **({"page_token": page_token} if page_token else {}))
        response = history(server, token, **query)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        page_token = response.json()["page_info"].get("next_page_token")
        if not page_token:
            return pages


def test_urls(hotmart):
    assert hotmart.api_url.endswith("/payments/api/v1")
    assert hotmart.auth_url.endswith("/security/oauth/token")
    assert hotmart.api_url.startswith("http://127.0.0.1:")


def test_token_flow_with_basic_auth(hotmart):
    response = get_token(hotmart)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "jti"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 172799
    served = history(hotmart, body["access_token"])
    assert served.status_code == 200
    request = hotmart.requests[0]
    assert request["method"] == "POST" and request["params"]["grant_type"] == "client_credentials"


@pytest.mark.parametrize("client_id,secret", [(CLIENT_ID, "wrong"), ("other", CLIENT_SECRET)])
def test_bad_credentials_401(hotmart, client_id, secret):
    response = get_token(hotmart, client_id, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_basic_header_must_match(hotmart):
    response = requests.post(
        hotmart.auth_url,
        params={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=10,
    )
    assert response.status_code == 401


def test_api_needs_a_valid_bearer(hotmart):
    assert history(hotmart, "not-a-token").status_code == 401
    response = requests.get(f"{hotmart.api_url}/sales/history", timeout=10)
    assert response.status_code == 401
    assert set(response.json()) == {"error", "error_description", "error_uri"}


def test_recorded_items_default_status_filter(hotmart):
    token = get_token(hotmart).json()["access_token"]
    # Documented: without transaction/transaction_status only APPROVED and COMPLETE sales come back.
    body = history(hotmart, token).json()
    assert [i["purchase"]["transaction"] for i in body["items"]] == ["HP2890253164"]
    assert "next_page_token" not in body["page_info"]
    under = history(hotmart, token, transaction_status="UNDER_ANALISYS").json()["items"]
    assert [i["purchase"]["transaction"] for i in under] == ["HP12455690122399"]
    by_code = history(hotmart, token, transaction="HP12455690122399").json()["items"]
    assert len(by_code) == 1


def test_paging_over_several_pages(hotmart):
    generated = hotmart.generate_items(23, seed=7, start_ms=WINDOW_START, end_ms=WINDOW_START + 10 * DAY_MS)
    assert len({i["purchase"]["transaction"] for i in generated}) == 23
    token = get_token(hotmart).json()["access_token"]
    pages = all_pages(hotmart, token, max_results=5)
    assert [len(p["items"]) for p in pages] == [5, 5, 5, 5, 3]
    assert all(p["page_info"]["total_results"] == 23 for p in pages)
    assert "next_page_token" not in pages[-1]["page_info"]
    assert "prev_page_token" not in pages[0]["page_info"] and "prev_page_token" in pages[1]["page_info"]
    codes = [i["purchase"]["transaction"] for p in pages for i in p["items"]]
    assert sorted(codes) == sorted(i["purchase"]["transaction"] for i in generated)
    dates = [i["purchase"]["order_date"] for p in pages for i in p["items"]]
    assert dates == sorted(dates)


def test_null_next_token_mode():
    with HotmartStandIn(null_next_token=True) as server:
        server.generate_items(4, seed=1, start_ms=WINDOW_START, end_ms=WINDOW_START + DAY_MS)
        token = server.issue_token()
        first = history(server, token, max_results=3).json()["page_info"]
        last = history(server, token, max_results=3, page_token=first["next_page_token"]).json()["page_info"]
    assert first["next_page_token"]
    assert "next_page_token" in last and last["next_page_token"] is None


def test_bad_page_token_400(hotmart):
    assert history(hotmart, hotmart.issue_token(), page_token="!!nope").status_code == 400


def test_date_window_filter(hotmart):
    hotmart.generate_items(30, seed=3, start_ms=WINDOW_START, end_ms=WINDOW_START + 30 * DAY_MS)
    token = hotmart.issue_token()
    start, end = WINDOW_START + 10 * DAY_MS, WINDOW_START + 20 * DAY_MS - 1
    items = [i for p in all_pages(hotmart, token, start_date=start, end_date=end, max_results=4) for i in p["items"]]
    assert len(items) == 10
    assert all(start <= i["purchase"]["order_date"] <= end for i in items)
    assert history(hotmart, token, start_date=WINDOW_START + 40 * DAY_MS).json()["items"] == []


def test_expired_token_401(hotmart):
    token = get_token(hotmart).json()["access_token"]
    assert history(hotmart, token).status_code == 200
    hotmart.expire_tokens()
    response = history(hotmart, token)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    assert history(hotmart, get_token(hotmart).json()["access_token"]).status_code == 200


def test_token_ttl_expires():
    with HotmartStandIn(token_ttl=60) as server:
        token = server.issue_token()
        server.pass_time(59)
        assert history(server, token).status_code == 200
        server.pass_time(1)
        assert history(server, token).status_code == 401


def test_status_update_visible(hotmart):
    generated = hotmart.generate_items(6, seed=5, start_ms=WINDOW_START, end_ms=WINDOW_START + DAY_MS)
    code = generated[2]["purchase"]["transaction"]
    token = hotmart.issue_token()
    hotmart.update_status(code, "REFUNDED")
    refunded = history(hotmart, token, transaction_status="REFUNDED").json()["items"]
    assert [i["purchase"]["transaction"] for i in refunded] == [code]
    assert code not in [i["purchase"]["transaction"] for i in history(hotmart, token).json()["items"]]
    assert history(hotmart, token, transaction=code).json()["items"][0]["purchase"]["status"] == "REFUNDED"
    with pytest.raises(KeyError):
        hotmart.update_status("HP-unknown", "REFUNDED")


@pytest.mark.parametrize("endpoint", ["sales/users", "sales/commissions", "sales/price/details", "sales/summary"])
def test_other_endpoints_serve_recorded_examples(hotmart, endpoint):
    response = requests.get(
        f"{hotmart.api_url}/{endpoint}", headers={"Authorization": f"Bearer {hotmart.issue_token()}"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["items"] == recorded_items(endpoint)


def test_generate_items_is_deterministic():
    a = HotmartStandIn().generate_items(10, seed=2, start_ms=WINDOW_START, end_ms=WINDOW_START + DAY_MS)
    b = HotmartStandIn().generate_items(10, seed=2, start_ms=WINDOW_START, end_ms=WINDOW_START + DAY_MS)
    assert a == b


def test_faults_from_nvd(hotmart):
    token = hotmart.issue_token()
    hotmart.inject(Fault.status(429, retry_after=1), times=2)
    assert history(hotmart, token).status_code == 429
    assert history(hotmart, token).headers["Retry-After"] == "1"
    assert history(hotmart, token).status_code == 200
    hotmart.inject(Fault.malformed())
    with pytest.raises(ValueError):
        history(hotmart, token).json()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_cut_short_fault_breaks_an_api_answer_off_then_service_resumes(hotmart, chunked):
    token = hotmart.issue_token()
    whole = history(hotmart, token).content
    hotmart.inject(Fault.cut_short(chunked))

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        history(hotmart, token)
    assert history(hotmart, token).content == whole


def test_faults_for_the_token_endpoint_leave_the_api_alone(hotmart):
    hotmart.inject(Fault.cut_short(), token_endpoint=True)

    assert history(hotmart, hotmart.issue_token()).status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        get_token(hotmart)
    assert get_token(hotmart).json()["token_type"] == "bearer"


def test_a_wrong_shape_fault_is_refused_for_the_token_endpoint(hotmart):
    with pytest.raises(ValueError, match="no items"):
        hotmart.inject(Fault.wrong_shape(), token_endpoint=True)


@pytest.mark.parametrize("endpoint", ["sales/users", "sales/commissions", "sales/price/details"])
def test_other_endpoints_follow_the_history_filters(hotmart, endpoint):
    generated = hotmart.generate_items(5, seed=9, start_ms=WINDOW_START, end_ms=WINDOW_START + DAY_MS)
    hotmart.update_status(generated[1]["purchase"]["transaction"], "REFUNDED")
    token = hotmart.issue_token()

    def codes(**params):
        response = requests.get(
            f"{hotmart.api_url}/{endpoint}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        return [i["transaction"] for i in response.json()["items"]]

    window = {"start_date": WINDOW_START, "end_date": WINDOW_START + DAY_MS}
    assert codes(**window, transaction_status="REFUNDED") == [generated[1]["purchase"]["transaction"]]
    assert len(codes(**window)) == 4  # the documented default: APPROVED and COMPLETE only


def test_an_api_serving_only_some_endpoints_answers_404_on_the_others():
    with HotmartStandIn(endpoints={"sales/history"}) as server:
        token = server.issue_token()

        def status(endpoint: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return requests.get(f"{server.api_url}/{endpoint}", headers=headers, timeout=10).status_code

        assert status("sales/history") == 200
        assert [status(e) for e in ("sales/users", "sales/commissions", "sales/price/details")] == [404, 404, 404]


def test_items_a_drifting_source_sends_are_served_as_they_are_without_validation(hotmart):
    keyless = {"purchase": {"order_date": WINDOW_START, "status": "APPROVED"}, "product": {"id": 1}}

    hotmart.set_items([*recorded_items(), keyless], validate=False)

    items = history(hotmart, hotmart.issue_token(), transaction_status="APPROVED").json()["items"]
    assert keyless in items
    with pytest.raises(ValueError, match="purchase.transaction"):
        hotmart.set_items([keyless])
