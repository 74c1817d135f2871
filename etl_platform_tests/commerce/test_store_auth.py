"""The store client's auth flow against the Fake Store stand-in: login, refresh, new login, new account."""

from __future__ import annotations

import pytest
from upath import UPath

from etl_platform.defs.commerce.resources import FakeStoreResource, StoreAuthError
from etl_platform.devservers.fake_store import Fault
from etl_platform_tests.commerce.conftest import FRIDAY, SATURDAY, auth_calls, fast
from etl_platform_tests.runs import failure_message

SHOES_ID = 4
JWT_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # base64url of {"alg":"HS256","typ":"JWT"}


def logged_in_client(store, **options):
    client = fast(FakeStoreResource, api_url=store.url, **options).client()
    client.login()
    store.clear_requests()
    return client


def product_requests(store) -> list[dict]:
    return [r for r in store.requests if r["path"] == "/api/v1/products"]


def test_an_expired_access_token_is_refreshed_once_not_looped(store):
    client = logged_in_client(store)
    store.expire_access_tokens()

    pages = client.product_pages(SHOES_ID)

    assert len(pages) == 1
    assert auth_calls(store) == {"login": 0, "refresh": 1, "create": 0}
    assert len(product_requests(store)) == 2  # the 401, then the retry with the new token


def test_a_rejected_refresh_token_leads_to_a_new_login(store):
    client = logged_in_client(store)
    store.expire_access_tokens()
    store.revoke_refresh_tokens()

    pages = client.product_pages(SHOES_ID)

    assert len(pages) == 1
    assert auth_calls(store) == {"login": 1, "refresh": 1, "create": 0}


def test_a_persistent_401_fails_with_a_clear_error_after_one_renewal(store):
    client = logged_in_client(store)
    store.inject(Fault.status(401), times=100, path="/products")

    with pytest.raises(StoreAuthError, match="still answers 401 Unauthorized after renewing the access token"):
        client.product_pages(SHOES_ID)

    assert auth_calls(store) == {"login": 0, "refresh": 1, "create": 0}
    assert len(product_requests(store)) == 2


def test_a_wrong_password_for_an_existing_account_fails_naming_the_variable(store):
    client = fast(FakeStoreResource, api_url=store.url, user_email="john@mail.com", user_password="wrong").client()

    with pytest.raises(StoreAuthError, match="STORE_USER_PASSWORD"):
        client.category("Shoes")

    assert auth_calls(store)["create"] == 0


def test_an_unknown_account_is_created_once_and_reused(run_day, store, monkeypatch):
    monkeypatch.setenv("STORE_USER_NAME", "ETL robot")
    monkeypatch.setenv("STORE_USER_EMAIL", "etl-robot@example.com")
    monkeypatch.setenv("STORE_USER_PASSWORD", "s3cret-Passw0rd")
    monkeypatch.setenv("STORE_USER_AVATAR", "https://picsum.photos/800")

    first = run_day(FRIDAY)
    second = run_day(SATURDAY)

    assert first.success and second.success
    assert auth_calls(store) == {"login": 3, "refresh": 0, "create": 1}  # refused, then after creation; next day
    assert [u["email"] for u in store.users].count("etl-robot@example.com") == 1


def test_no_token_or_password_reaches_logs_metadata_or_raw_files(run_day, store, etl_env, monkeypatch):
    monkeypatch.setenv("STORE_USER_EMAIL", "etl-robot@example.com")
    monkeypatch.setenv("STORE_USER_PASSWORD", "s3cret-Passw0rd")
    store.expire_access_tokens()  # nothing issued yet: this only makes sure a run logs in afresh

    result = run_day(FRIDAY)

    assert result.success
    events = "\n".join(str(event) for event in result.all_events)
    raw = [path for path in UPath(etl_env["ETL_HOME"]).rglob("*.json") if path.is_file()]
    files = "\n".join(path.read_text(errors="replace") for path in raw)
    for secret in ("s3cret-Passw0rd", JWT_HEADER):
        assert secret not in events
        assert secret not in files


def test_a_persistent_401_fails_the_day_with_a_clear_error_and_loads_no_product(run_day, store):
    store.inject(Fault.status(401), times=100, path="/products")

    result = run_day(FRIDAY)

    assert not result.success
    assert "still answers 401 Unauthorized" in failure_message(result)
    assert auth_calls(store)["refresh"] == 1
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not {"commerce/raw/products", "commerce/tables/product"} & materialized
