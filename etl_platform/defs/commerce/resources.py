"""The clients of the `commerce` group's sources, as Dagster resources.

- ECB data API (SDMX REST): `{ECB_API_URL}/EXR/D.USD.EUR.SP00.A?startPeriod=&endPeriod=&format=csvdata`
  (or `jsondata`); a period without observations answers 404 "No results found.". The full
  history of every currency is one zip (`ECB_HISTORY_URL`).
- Platzi Fake Store API (`STORE_API_URL`, up to `/api/v1`): JWT auth. Log in with the account;
  when it does not exist (`/users/is-available`), create it and log in; on a 401 refresh the
  access token once, and log in again if the refresh token is refused too. Tokens and the
  password live in memory and in request headers/bodies only: never in a log, an error
  message, metadata or a raw file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
from dagster import ConfigurableResource
from pydantic import Field
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from etl_platform.lib import settings
from etl_platform.lib.http import (
    RETRYABLE_TRANSPORT_ERRORS,
    HttpClient,
    RetryableStatus,
    SourceError,
    parse_retry_after,
)

ECB_API_URL = "https://data-api.ecb.europa.eu/service/data"
ECB_HISTORY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip"
ECB_SERIES = "EXR/D.USD.EUR.SP00.A"
ACCEPT = {"csvdata": "text/csv", "jsondata": "application/vnd.sdmx.data+json;version=1.0.0-wd, application/json"}
STORE_API_URL = "https://api.escuelajs.co/api/v1"
# The account of the API's documentation: it exists on the public API and in the stand-in.
DEFAULT_ACCOUNT = {
    "name": "Jhon",
    "email": "john@mail.com",
    "password": "changeme",
    "avatar": "https://i.imgur.com/LDOO4Qs.jpg",
}


class StoreAuthError(SourceError):
    """The store refused the account: wrong password, or a 401 that login and refresh cannot cure."""


class Unauthorized(SourceError):
    """HTTP 401."""


class ApiHttp(HttpClient):
    """`HttpClient` with any method, JSON bodies, per-request headers, and 401 / chosen statuses
    handed back to the caller instead of failing (the auth flow and the ECB's 404 need them)."""

    def send(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json: Any = None,
        headers: dict | None = None,
        passthrough: frozenset[int] = frozenset(),
        attempts: int | None = None,
    ) -> requests.Response:
        attempts = attempts or self.attempts
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception_type((RetryableStatus, *RETRYABLE_TRANSPORT_ERRORS)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        where = f"{method} {url.split('?')[0]}"
        try:
            return retrying(self._send_once, method, url, params, json, headers, passthrough, where)
        except RetryableStatus as error:
            raise SourceError(f"{self.name}: gave up after {attempts} attempts: {error}") from error
        except RETRYABLE_TRANSPORT_ERRORS as error:
            raise SourceError(
                f"{self.name}: gave up after {attempts} attempts on {where}: {type(error).__name__}: {error}"
            ) from error

    def _send_once(self, method, url, params, json, headers, passthrough, where) -> requests.Response:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        # Not streamed: the body is read inside the attempt, so a body cut short is retried.
        response = self.session.request(method, url, params=params, json=json, headers=headers, timeout=self.timeout)
        status = response.status_code
        if status in passthrough:
            return response
        if status in self.retry_statuses:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableStatus(f"HTTP {status} from {where}", status, retry_after)
        if status == 401:
            raise Unauthorized(f"{self.name}: HTTP 401 from {where}")
        if status >= 400:
            raise SourceError(f"{self.name}: HTTP {status} from {where}: {response.text[:300]}")
        return response


def _http(name: str, timeout: float, attempts: int, backoff: float, logger) -> ApiHttp:
    return ApiHttp(
        name=name,
        timeout=timeout,
        attempts=attempts,
        backoff_seconds=backoff,
        logger=logger or logging.getLogger(__name__),
    )


# ---------------------------------------------------------------- ECB


@dataclass(frozen=True)
class EcbAnswer:
    """One answer of the data API, kept as sent (`body`); `found` is False for "No results found."."""

    url: str
    params: dict
    format: str
    status: int
    body: bytes

    @property
    def found(self) -> bool:
        return self.status == 200


class EcbResource(ConfigurableResource):
    """ECB data API (`ECB_API_URL`) and its reference-rate history file (`ECB_HISTORY_URL`)."""

    api_url: str | None = Field(
        default=None, description="SDMX data API base up to /service/data; default ECB_API_URL or the ECB"
    )
    history_url: str | None = Field(default=None, description="eurofxref-hist zip; default ECB_HISTORY_URL or the ECB")
    format: str = Field(default="csvdata", description="csvdata or jsondata")
    timeout_seconds: float = 60.0
    attempts: int = 6
    backoff_seconds: float = 2.0

    def resolved_url(self) -> str:
        return (self.api_url or settings.env("ECB_API_URL", ECB_API_URL)).rstrip("/")

    def resolved_history_url(self) -> str:
        return self.history_url or settings.env("ECB_HISTORY_URL", ECB_HISTORY_URL)

    def client(self, logger=None) -> EcbClient:
        if self.format not in ("csvdata", "jsondata"):
            raise ValueError(f"ECB format must be csvdata or jsondata, not {self.format!r}")
        http = _http("ECB", self.timeout_seconds, self.attempts, self.backoff_seconds, logger)
        return EcbClient(http, self.resolved_url(), self.resolved_history_url(), self.format)


@dataclass
class EcbClient:
    http: ApiHttp
    url: str
    history_url: str
    format: str

    def series(self, start: date, end: date) -> EcbAnswer:
        """USD per EUR observations from `start` to `end` (both inclusive)."""
        url = f"{self.url}/{ECB_SERIES}"
        params = {"startPeriod": start.isoformat(), "endPeriod": end.isoformat(), "format": self.format}
        headers = {"Accept": ACCEPT[self.format]}
        response = self.http.send("GET", url, params=params, headers=headers, passthrough=frozenset({404}))
        if response.status_code == 404 and not response.content.strip().startswith(b"No results"):
            raise SourceError(f"ECB: HTTP 404 from {url}: {response.text[:200]}")
        return EcbAnswer(url, params, self.format, response.status_code, response.content)

    def history(self) -> bytes:
        """The eurofxref-hist zip: every reference rate of every currency since 1999."""
        return self.http.send("GET", self.history_url, headers={"Accept": "application/zip, */*"}).content


# ---------------------------------------------------------------- store


class FakeStoreResource(ConfigurableResource):
    """Platzi Fake Store API (`STORE_API_URL`) with its account (`STORE_USER_*`) and `STORE_CATEGORY`."""

    api_url: str | None = Field(default=None, description="base up to /api/v1; default STORE_API_URL or the public API")
    user_name: str | None = Field(default=None, description="default STORE_USER_NAME")
    user_email: str | None = Field(default=None, description="default STORE_USER_EMAIL")
    user_password: str | None = Field(default=None, description="default STORE_USER_PASSWORD (never logged)")
    user_avatar: str | None = Field(default=None, description="default STORE_USER_AVATAR")
    category: str | None = Field(default=None, description="category name; default STORE_CATEGORY or Shoes")
    page_size: int = Field(default=50, ge=1, le=200, description="products per page (limit)")
    timeout_seconds: float = 30.0
    attempts: int = 6
    backoff_seconds: float = 2.0

    def resolved_url(self) -> str:
        return (self.api_url or settings.env("STORE_API_URL", STORE_API_URL)).rstrip("/")

    def resolved_category(self) -> str:
        return self.category or settings.env("STORE_CATEGORY", "Shoes")

    def account(self) -> dict[str, str]:
        configured = {
            "name": self.user_name or settings.env("STORE_USER_NAME"),
            "email": self.user_email or settings.env("STORE_USER_EMAIL"),
            "password": self.user_password or settings.env("STORE_USER_PASSWORD"),
            "avatar": self.user_avatar or settings.env("STORE_USER_AVATAR"),
        }
        if not configured["email"]:
            return dict(DEFAULT_ACCOUNT)
        if not configured["password"]:
            raise StoreAuthError(f"STORE_USER_EMAIL is {configured['email']} but STORE_USER_PASSWORD is not set")
        return {name: value or DEFAULT_ACCOUNT[name] for name, value in configured.items()}

    def client(self, logger=None) -> StoreClient:
        http = _http("Fake Store", self.timeout_seconds, self.attempts, self.backoff_seconds, logger)
        return StoreClient(
            http=http, url=self.resolved_url(), account=self.account(), page_size=self.page_size, log=http.logger
        )


@dataclass
class StoreClient:
    """Authenticated reads; counts what the auth flow did (`auth_events`) for metadata and tests."""

    http: ApiHttp
    url: str
    account: dict[str, str] = field(repr=False)
    page_size: int = 50
    log: Any = None
    _access: str | None = field(default=None, repr=False)
    _refresh: str | None = field(default=None, repr=False)
    auth_events: dict[str, int] = field(default_factory=lambda: {"login": 0, "refresh": 0, "account_created": 0})

    # ---- auth

    def login(self) -> None:
        """Log in; create the account first when the store says it does not exist."""
        if self._try_login():
            return
        if not self._account_missing():
            raise StoreAuthError(
                f"Fake Store: login refused for {self.account['email']}: the account exists, so the password "
                "(STORE_USER_PASSWORD) is wrong"
            )
        self._create_account()
        if not self._try_login():
            raise StoreAuthError(
                f"Fake Store: login refused for {self.account['email']} right after creating the account"
            )

    def _try_login(self) -> bool:
        self.auth_events["login"] += 1
        body = {"email": self.account["email"], "password": self.account["password"]}
        response = self.http.send("POST", f"{self.url}/auth/login", json=body, passthrough=frozenset({400, 401}))
        if response.status_code in (400, 401):
            return False
        self._store_tokens(response, "login")
        self.log.info(f"Fake Store: logged in as {self.account['email']}")
        return True

    def _account_missing(self) -> bool:
        response = self.http.send("POST", f"{self.url}/users/is-available", json={"email": self.account["email"]})
        try:
            return bool(response.json()["isAvailable"])
        except (ValueError, KeyError, TypeError) as error:
            raise SourceError(f"Fake Store: /users/is-available answered {response.text[:200]!r}") from error

    def _create_account(self) -> None:
        # Not retried: a repeated creation would be refused as a duplicate email.
        self.http.send("POST", f"{self.url}/users/", json=dict(self.account), attempts=1)
        self.auth_events["account_created"] += 1
        self.log.warning(f"Fake Store: the account {self.account['email']} did not exist and was created")

    def _refresh_tokens(self) -> bool:
        if not self._refresh:
            return False
        self.auth_events["refresh"] += 1
        response = self.http.send(
            "POST",
            f"{self.url}/auth/refresh-token",
            json={"refreshToken": self._refresh},
            passthrough=frozenset({400, 401}),
        )
        if response.status_code in (400, 401):
            self.log.info("Fake Store: the refresh token was refused; logging in again")
            return False
        self._store_tokens(response, "refresh")
        self.log.info("Fake Store: access token refreshed")
        return True

    def _store_tokens(self, response: requests.Response, what: str) -> None:
        try:
            tokens = response.json()
            self._access, self._refresh = tokens["access_token"], tokens.get("refresh_token") or self._refresh
        except (ValueError, KeyError, TypeError) as error:
            raise SourceError(f"Fake Store: the {what} answer holds no access_token") from error

    def get(self, path: str, params: dict | None = None) -> requests.Response:
        """GET with the access token; on 401 renew it once (refresh, else log in) and try once more."""
        if self._access is None:
            self.login()
        try:
            return self._get(path, params)
        except Unauthorized:
            self.log.info(f"Fake Store: 401 on {path}: the access token expired or was revoked")
        if not self._refresh_tokens():
            self.login()
        try:
            return self._get(path, params)
        except Unauthorized as error:
            raise StoreAuthError(
                f"Fake Store: GET {path} still answers 401 Unauthorized after renewing the access token "
                f"(refreshed or logged in again as {self.account['email']}); giving up instead of looping"
            ) from error

    def _get(self, path: str, params: dict | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._access}"}
        return self.http.send("GET", f"{self.url}{path}", params=params, headers=headers)

    # ---- data

    def category(self, name: str) -> dict:
        """The category with this exact name (the first, if the store holds several)."""
        response = self.get("/categories")
        categories = _json(response, "/categories")
        if not isinstance(categories, list):
            raise SourceError("Fake Store: /categories did not answer a list")
        for category in categories:
            if isinstance(category, dict) and category.get("name") == name:
                return category
        names = sorted({str(c.get("name")) for c in categories if isinstance(c, dict)})
        raise SourceError(
            f"Fake Store: no category named {name!r} (STORE_CATEGORY) among {len(names)}: {', '.join(names[:20])}..."
        )

    def product_pages(self, category_id: int) -> list[bytes]:
        """Every page of the category's products (`offset`/`limit`), each body as sent."""
        pages: list[bytes] = []
        seen: set = set()
        offset = 0
        while True:
            params = {"categoryId": category_id, "offset": offset, "limit": self.page_size}
            body = self.get("/products", params).content
            items = _json_bytes(body, f"/products offset={offset}")
            if not isinstance(items, list):
                raise SourceError(f"Fake Store: /products offset={offset} did not answer a list")
            ids = {item.get("id") for item in items if isinstance(item, dict)}
            if ids & seen:
                raise SourceError(
                    f"Fake Store: /products offset={offset} repeats products already read: is offset ignored?"
                )
            seen |= ids
            if items:
                pages.append(body)
            if len(items) < self.page_size:
                return pages
            offset += self.page_size


def _json(response: requests.Response, where: str) -> Any:
    return _json_bytes(response.content, where)


def _json_bytes(body: bytes, where: str) -> Any:
    import json

    try:
        return json.loads(body)
    except ValueError as error:
        raise SourceError(f"Fake Store: {where} is not valid JSON ({error}); first bytes {body[:60]!r}") from error
