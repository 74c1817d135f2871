"""The Platzi Fake Store API stand-in, exercised over real loopback HTTP."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from etl_platform.devservers import FakeStoreStandIn
from etl_platform.devservers.fake_store import Fault, sample_products

SAMPLES = Path(__file__).resolve().parents[2] / "etl_platform" / "samples" / "fake_store"
JOHN = {"email": "john@mail.com", "password": "changeme"}
SHOES_ID = 4


@pytest.fixture
def store():
    with FakeStoreStandIn() as server:
        yield server


def login(store: FakeStoreStandIn, credentials: dict = JOHN) -> dict:
    response = requests.post(f"{store.url}/auth/login", json=credentials, timeout=10)
    assert response.status_code == 201
    return response.json()


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def get(store: FakeStoreStandIn, path: str, tokens: dict | None = None, **params) -> requests.Response:
    headers = bearer(tokens) if tokens else {}
    return requests.get(f"{store.url}{path}", params=params, headers=headers, timeout=10)


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# ---- reads


def test_products_are_the_recorded_bytes(store):
    response = get(store, "/products", login(store))
    assert response.status_code == 200
    assert response.content == (SAMPLES / "products_2025-10-17.json").read_bytes()


def test_paging_with_offset_and_limit(store):
    tokens = login(store)
    first = get(store, "/products", tokens, offset=0, limit=10)
    assert first.content == (SAMPLES / "products_offset0_limit10_2025-10-17.json").read_bytes()
    ids = [p["id"] for p in sample_products()]
    pages, offset = [], 0
    while True:
        page = get(store, "/products", tokens, offset=offset, limit=25).json()
        if not page:
            break
        pages.extend(p["id"] for p in page)
        offset += 25
    assert pages == ids and len(ids) == 108


def test_category_filter_on_products(store):
    products = get(store, "/products", login(store), categoryId=10).json()
    recorded = json.loads((SAMPLES / "products_categoryId10_2025-10-17.json").read_bytes())
    assert {p["category"]["id"] for p in products} == {10}
    # the categoryId=10 recording was taken just before product 801 was created
    assert [p["id"] for p in products] == [p["id"] for p in recorded] + [801]


def test_category_products_endpoint_matches_recording(store):
    response = get(store, "/categories/1/products", login(store))
    assert response.content == (SAMPLES / "categories_1_products_2025-10-17.json").read_bytes()


def test_categories_and_single_product(store):
    tokens = login(store)
    categories = get(store, "/categories", tokens)
    assert categories.content == (SAMPLES / "categories_2025-10-17.json").read_bytes()
    assert {"id": SHOES_ID, "name": "Shoes"}.items() <= next(c for c in categories.json() if c["id"] == SHOES_ID).items()
    product = get(store, "/products/162", tokens)
    assert product.status_code == 200 and product.json()["title"] == "Standard Kit"
    assert get(store, "/products/999999", tokens).status_code == 400


def test_assign_category_puts_products_in_shoes(store):
    tokens = login(store)
    assert get(store, f"/categories/{SHOES_ID}/products", tokens).json() == []
    shoes = store.assign_category([162, 163], "Shoes")
    assert shoes["id"] == SHOES_ID
    listed = get(store, f"/categories/{SHOES_ID}/products", tokens).json()
    assert [p["id"] for p in listed] == [162, 163]
    assert all(p["category"]["name"] == "Shoes" for p in listed)
    assert [p["id"] for p in get(store, "/products", tokens, categoryId=SHOES_ID).json()] == [162, 163]
    with pytest.raises(KeyError):
        store.assign_category([162], "No such category")


def test_set_products_serves_changed_prices_and_removals(store):
    tokens = login(store)
    products = sample_products()[:3]
    products[0]["price"] = 999
    store.set_products(products)
    served = get(store, "/products", tokens).json()
    assert [p["id"] for p in served] == [162, 163, 166]
    assert served[0]["price"] == 999
    assert get(store, "/products/169", tokens).status_code == 400


# ---- auth


def test_login_returns_hs256_jwt_pair(store):
    tokens = login(store)
    for name in ("access_token", "refresh_token"):
        header, payload, signature = tokens[name].split(".")
        assert b64url_json(header) == {"alg": "HS256", "typ": "JWT"}
        claims = b64url_json(payload)
        assert claims["sub"] == 1 and claims["exp"] > claims["iat"] >= int(time.time()) - 5
        assert signature


def test_login_with_bad_credentials_is_401(store):
    response = requests.post(f"{store.url}/auth/login", json={**JOHN, "password": "wrong"}, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized", "statusCode": 401}


def test_profile_with_bearer(store):
    profile = get(store, "/auth/profile", login(store))
    assert profile.status_code == 200
    assert profile.json()["email"] == "john@mail.com" and profile.json()["role"] == "customer"


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not.a.jwt", "Basic am9objpjaGFuZ2VtZQ=="])
def test_protected_reads_without_a_valid_token_are_401(store, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/products", "/categories", "/categories/1/products", "/products/162", "/auth/profile"):
        response = requests.get(f"{store.url}{path}", headers=headers, timeout=10)
        assert response.status_code == 401, path


def test_refresh_token_is_not_an_access_token(store):
    tokens = login(store)
    response = get(store, "/products", {"access_token": tokens["refresh_token"]})
    assert response.status_code == 401


def test_access_token_expires_after_access_ttl():
    with FakeStoreStandIn(access_ttl=60) as store:
        tokens = login(store)
        store.pass_time(58)  # not 59: `exp` is whole seconds, rounded down
        assert get(store, "/products", tokens).status_code == 200
        store.pass_time(2)
        assert get(store, "/products", tokens).status_code == 401


def test_expire_access_tokens_then_refresh(store):
    tokens = login(store)
    store.expire_access_tokens()
    assert get(store, "/products", tokens).status_code == 401
    refreshed = requests.post(
        f"{store.url}/auth/refresh-token", json={"refreshToken": tokens["refresh_token"]}, timeout=10
    )
    assert refreshed.status_code == 201
    assert set(refreshed.json()) == {"access_token", "refresh_token"}
    assert get(store, "/products", refreshed.json()).status_code == 200


@pytest.mark.parametrize("body", [{"refreshToken": "garbage"}, {}, {"refresh_token": "x"}])
def test_invalid_refresh_token_is_401(store, body):
    response = requests.post(f"{store.url}/auth/refresh-token", json=body, timeout=10)
    assert response.status_code == 401


def test_revoked_refresh_token_is_401(store):
    tokens = login(store)
    store.revoke_refresh_tokens()
    response = requests.post(
        f"{store.url}/auth/refresh-token", json={"refreshToken": tokens["refresh_token"]}, timeout=10
    )
    assert response.status_code == 401
    assert get(store, "/products", tokens).status_code == 200  # access tokens are untouched


def test_refresh_token_expires_after_refresh_ttl():
    with FakeStoreStandIn(access_ttl=60, refresh_ttl=120) as store:
        tokens = login(store)
        store.pass_time(120)
        response = requests.post(
            f"{store.url}/auth/refresh-token", json={"refreshToken": tokens["refresh_token"]}, timeout=10
        )
        assert response.status_code == 401


def test_open_mode_serves_reads_anonymously_like_the_real_api():
    with FakeStoreStandIn(require_auth=False) as store:
        assert get(store, "/products", limit=1).status_code == 200


# ---- users


def test_user_creation_then_login(store):
    request = json.loads((SAMPLES / "users_create_request_2025-10-17.json").read_bytes())
    recorded = json.loads((SAMPLES / "users_create_response_2025-10-17.json").read_bytes())
    available = requests.post(f"{store.url}/users/is-available", json={"email": request["email"]}, timeout=10)
    assert available.status_code == 201 and available.json() == {"isAvailable": True}

    created = requests.post(f"{store.url}/users/", json=request, timeout=10)
    assert created.status_code == 201
    assert set(created.json()) == set(recorded)
    assert {k: created.json()[k] for k in ("email", "password", "name", "role", "avatar")} == {
        k: recorded[k] for k in ("email", "password", "name", "role", "avatar")
    }

    again = requests.post(f"{store.url}/users/is-available", json={"email": request["email"]}, timeout=10)
    assert again.json() == {"isAvailable": False}
    tokens = login(store, {"email": request["email"], "password": request["password"]})
    assert get(store, "/auth/profile", tokens).json()["id"] == created.json()["id"]


def test_user_creation_rejects_missing_fields_and_duplicates(store):
    missing = requests.post(f"{store.url}/users/", json={"email": "a@b.c"}, timeout=10)
    assert missing.status_code == 400
    duplicate = requests.post(
        f"{store.url}/users/", json={**JOHN, "name": "J", "avatar": "https://picsum.photos/800"}, timeout=10
    )
    assert duplicate.status_code == 400


# ---- observation and faults


def test_requests_are_logged_without_passwords(store):
    tokens = login(store)
    get(store, "/products", tokens, limit=5)
    requests.post(
        f"{store.url}/users/",
        json={"name": "N", "email": "n@x.io", "password": "s3cret-pw", "avatar": "https://picsum.photos/800"},
        timeout=10,
    )
    log = store.requests
    assert [(r["method"], r["path"]) for r in log] == [
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/products"),
        ("POST", "/api/v1/users/"),
    ]
    assert log[0]["json"] == {"email": "john@mail.com", "password": "***"}
    assert log[1]["params"] == {"limit": "5"}
    assert log[1]["headers"]["Authorization"] == f"Bearer {tokens['access_token']}"
    assert "changeme" not in repr(log) and "s3cret-pw" not in repr(log)


def test_injected_status_fault_then_recovery(store):
    tokens = login(store)
    store.inject(Fault.status(503, retry_after=2), times=2, path="/products")
    assert get(store, "/categories", tokens).status_code == 200  # other paths unaffected
    for _ in range(2):
        failed = get(store, "/products", tokens)
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
    assert get(store, "/products", tokens).status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_cut_short_fault_breaks_the_answer_off_then_service_resumes(store, chunked):
    tokens = login(store)
    store.inject(Fault.cut_short(chunked), path="/products")

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        get(store, "/products", tokens)
    assert get(store, "/products", tokens).json() == sample_products()


def test_unsupported_fault_is_refused(store):
    with pytest.raises(TypeError):
        store.inject(Fault.wrong_shape())


def test_stop_frees_the_port():
    with FakeStoreStandIn() as store:
        port = store.port
        login(store)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_cli_prints_its_url_and_stops_on_ctrl_c():
    repo_root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "etl_platform.devservers", "fake-store", "--port", "0"],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://\S+", process.stdout.readline()).group()
        assert requests.post(f"{url}/auth/login", json=JOHN, timeout=10).status_code == 201
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
