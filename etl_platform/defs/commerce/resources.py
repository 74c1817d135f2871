"""The clients of the `commerce` group's sources, as Dagster resources.

- ECB data API (SDMX REST): `{ECB_API_URL}/EXR/D.USD.EUR.SP00.A?startPeriod=&endPeriod=&format=csvdata`
  (or `jsondata`); a period without observations answers 404 "No results found.". The full
  history of every currency is one zip (`ECB_HISTORY_URL`).
- Platzi Fake Store API (`STORE_API_URL`, up to `/api/v1`): JWT auth. Log in with the account;
  when it does not exist (`/users/is-available`), create it and log in; on a 401 refresh the
  access token once, and log in again if the refresh token is refused too (`StoreAuth`, the
  `TokenAuth` that `lib/http.py` renews a token through). Tokens and the
  password live in memory and in request headers/bodies only: never in a log, an error
  message, metadata or a raw file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
from pydantic import Field

from etl_platform.lib.http import HttpClient, HttpResource, SourceError

ECB_API_URL = "https://data-api.ecb.europa.eu/service/data"
ECB_HISTORY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip"
ECB_SERIES = "EXR/D.USD.EUR.SP00.A"
ACCEPT = {"csvdata": "text/csv", "jsondata": "application/vnd.sdmx.data+json;version=1.0.0-wd, application/json"}
STORE_API_URL = "https://api.escuelajs.co/api/v1"
DEFAULT_CATEGORY = "Shoes"
# The account of the API's documentation: it exists on the public API and in the stand-in.
DEFAULT_ACCOUNT = {
    "name": "Jhon",
    "email": "john@mail.com",
    "password": "changeme",
    "avatar": "https://i.imgur.com/LDOO4Qs.jpg",
}


class StoreAuthError(SourceError):
    """The store refused the account: wrong password, or a 401 that login and refresh cannot cure."""


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


class EcbResource(HttpResource):
    """ECB data API and its reference-rate history file (bound to `ECB_API_URL`, `ECB_HISTORY_URL` when set)."""

    api_url: str = Field(default=ECB_API_URL, description="SDMX data API base up to /service/data (ECB_API_URL)")
    history_url: str = Field(default=ECB_HISTORY_URL, description="eurofxref-hist zip (ECB_HISTORY_URL)")
    format: str = Field(default="csvdata", description="csvdata or jsondata")

    def client(self, logger=None) -> EcbClient:
        if self.format not in ("csvdata", "jsondata"):
            raise ValueError(f"ECB format must be csvdata or jsondata, not {self.format!r}")
        http = self.http_client("ECB", logger or logging.getLogger(__name__))
        return EcbClient(http, self.api_url.rstrip("/"), self.history_url, self.format)


@dataclass
class EcbClient:
    http: HttpClient
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


class FakeStoreResource(HttpResource):
    """Platzi Fake Store API with its account and category (bound to `STORE_*` variables when set)."""

    api_url: str = Field(default=STORE_API_URL, description="base up to /api/v1 (STORE_API_URL)")
    user_name: str | None = Field(default=None, description="STORE_USER_NAME")
    user_email: str | None = Field(default=None, description="STORE_USER_EMAIL; none: the API docs' account")
    user_password: str | None = Field(default=None, description="STORE_USER_PASSWORD (never logged)")
    user_avatar: str | None = Field(default=None, description="STORE_USER_AVATAR")
    category: str = Field(default=DEFAULT_CATEGORY, description="category name (STORE_CATEGORY)")
    page_size: int = Field(default=50, ge=1, le=200, description="products per page (limit)")
    timeout_seconds: float = 30.0

    def resolved_url(self) -> str:
        """The API base without a trailing slash."""
        return self.api_url.rstrip("/")

    def account(self) -> dict[str, str]:
        configured = {
            "name": self.user_name,
            "email": self.user_email,
            "password": self.user_password,
            "avatar": self.user_avatar,
        }
        if not configured["email"]:
            return dict(DEFAULT_ACCOUNT)
        if not configured["password"]:
            raise StoreAuthError(f"STORE_USER_EMAIL is {configured['email']} but STORE_USER_PASSWORD is not set")
        return {name: value or DEFAULT_ACCOUNT[name] for name, value in configured.items()}

    def client(self, logger=None) -> StoreClient:
        http = self.http_client("Fake Store", logger or logging.getLogger(__name__))
        http.auth = StoreAuth(http=http, url=self.resolved_url(), account=self.account())
        return StoreClient(http=http, url=self.resolved_url(), auth=http.auth, page_size=self.page_size)


@dataclass
class StoreAuth:
    """The store's JWT flow as `HttpClient` renews tokens through it; counts what it did (`events`)."""

    http: HttpClient
    url: str
    account: dict[str, str] = field(repr=False)
    events: dict[str, int] = field(default_factory=lambda: {"login": 0, "refresh": 0, "account_created": 0})
    _access: str | None = field(default=None, repr=False)
    _refresh: str | None = field(default=None, repr=False)

    # ---- TokenAuth

    def headers(self) -> dict[str, str]:
        if self._access is None:
            self.login()
        return {"Authorization": f"Bearer {self._access}"}

    def renew(self) -> None:
        """Refresh the access token, or log in again when the refresh token is refused too."""
        if not self._refresh_tokens():
            self.login()

    def refused(self, where: str) -> SourceError:
        return StoreAuthError(
            f"Fake Store: {where} still answers 401 Unauthorized after renewing the access token "
            f"(refreshed or logged in again as {self.account['email']}); giving up instead of looping"
        )

    # ---- the flow; its own requests carry no bearer token

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

    def _post(self, path: str, body: dict, passthrough: frozenset[int] = frozenset(), **options) -> requests.Response:
        return self.http.send(
            "POST", f"{self.url}{path}", json=body, passthrough=passthrough, authenticated=False, **options
        )

    def _try_login(self) -> bool:
        self.events["login"] += 1
        body = {"email": self.account["email"], "password": self.account["password"]}
        response = self._post("/auth/login", body, frozenset({400, 401}))
        if response.status_code in (400, 401):
            return False
        self._store_tokens(response, "login")
        self.http.logger.info(f"Fake Store: logged in as {self.account['email']}")
        return True

    def _account_missing(self) -> bool:
        response = self._post("/users/is-available", {"email": self.account["email"]})
        try:
            return bool(response.json()["isAvailable"])
        except (ValueError, KeyError, TypeError) as error:
            raise SourceError(f"Fake Store: /users/is-available answered {response.text[:200]!r}") from error

    def _create_account(self) -> None:
        # Not retried: a repeated creation would be refused as a duplicate email.
        self._post("/users/", dict(self.account), attempts=1)
        self.events["account_created"] += 1
        self.http.logger.warning(f"Fake Store: the account {self.account['email']} did not exist and was created")

    def _refresh_tokens(self) -> bool:
        if not self._refresh:
            return False
        self.events["refresh"] += 1
        response = self._post("/auth/refresh-token", {"refreshToken": self._refresh}, frozenset({400, 401}))
        if response.status_code in (400, 401):
            self.http.logger.info("Fake Store: the refresh token was refused; logging in again")
            return False
        self._store_tokens(response, "refresh")
        self.http.logger.info("Fake Store: access token refreshed")
        return True

    def _store_tokens(self, response: requests.Response, what: str) -> None:
        try:
            tokens = response.json()
            self._access, self._refresh = tokens["access_token"], tokens.get("refresh_token") or self._refresh
        except (ValueError, KeyError, TypeError) as error:
            raise SourceError(f"Fake Store: the {what} answer holds no access_token") from error


@dataclass
class StoreClient:
    """Authenticated reads (`auth` renews the access token on a 401)."""

    http: HttpClient
    url: str
    auth: StoreAuth
    page_size: int = 50

    @property
    def auth_events(self) -> dict[str, int]:
        """What the auth flow did (login, refresh, account_created), for metadata and tests."""
        return self.auth.events

    def login(self) -> None:
        self.auth.login()

    def get(self, path: str, params: dict | None = None) -> requests.Response:
        """GET with the access token; a 401 renews it once (refresh, else log in) and tries once more."""
        return self.http.get(f"{self.url}{path}", params)

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
