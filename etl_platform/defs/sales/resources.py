"""The Hotmart sales API client, as a Dagster resource.

Documented behaviour (samples/hotmart_sales/SOURCES.md):
- token: `POST SALES_AUTH_URL?grant_type=client_credentials&client_id=..&client_secret=..` with
  `Authorization: Basic base64(id:secret)`; the answer's `access_token` is then sent as
  `Authorization: Bearer ..` until shortly before `expires_in`; a 401 renews it once;
- `GET SALES_API_URL/sales/history` (and `sales/users`, `sales/commissions`,
  `sales/price/details`): cursor paging with `max_results` / `page_token`; a missing or null
  `next_page_token` ends the listing; `start_date` / `end_date` in epoch milliseconds;
- without `transaction_status` only APPROVED and COMPLETE sales come back, so the client asks
  once per documented status: otherwise a refund would never reach the warehouse;
- 500 calls per minute; 429 and 5xx are retried by `lib/http.py`, honouring `Retry-After`.

Secrets travel only in headers and in the token request's query (as Hotmart documents);
error messages never quote that URL.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from dagster import ConfigurableResource
from pydantic import Field

from etl_platform.lib import settings
from etl_platform.lib.http import (
    RETRYABLE_STATUSES,
    RETRYABLE_TRANSPORT_ERRORS,
    HttpClient,
    RateLimiter,
    SourceError,
)

SALES_API_URL = "https://developers.hotmart.com/payments/api/v1"
SALES_AUTH_URL = "https://api-sec-vlc.hotmart.com/security/oauth/token"
# Every documented `transaction_status` (Hotmart spells UNDER_ANALISYS this way).
TRANSACTION_STATUSES = (
    "APPROVED", "BLOCKED", "CANCELLED", "CHARGEBACK", "COMPLETE", "EXPIRED", "NO_FUNDS", "OVERDUE",
    "PARTIALLY_REFUNDED", "PRE_ORDER", "PRINTED_BILLET", "PROCESSING_TRANSACTION", "PROTESTED",
    "REFUNDED", "STARTED", "UNDER_ANALISYS", "WAITING_PAYMENT",
)  # fmt: skip
ENDPOINTS = ("sales/history", "sales/users", "sales/commissions", "sales/price/details")


class TokenRejected(SourceError):
    """The API answered 401 to a bearer token (expired or revoked)."""


class SalesPageError(SourceError):
    """A page that is not what the API documents (not JSON, no `items` list)."""


@dataclass(frozen=True)
class SalesPage:
    """One page as the API sent it (`body`, byte for byte) and what paging needs from it."""

    endpoint: str
    status: str | None
    number: int
    body: bytes
    items: list[dict]
    total_results: int | None
    next_page_token: str | None


def _raise_on_401(response: requests.Response, *args, **kwargs) -> None:
    if response.status_code == 401:
        raise TokenRejected(f"Hotmart: HTTP 401 from {response.request.path_url.split('?')[0]}")


class HotmartResource(ConfigurableResource):
    """Hotmart sales API (`SALES_API_URL`, `SALES_AUTH_URL`, `SALES_CLIENT_ID`, `SALES_CLIENT_SECRET`)."""

    api_url: str | None = Field(default=None, description="API base up to /payments/api/v1; default SALES_API_URL")
    auth_url: str | None = Field(default=None, description="full token URL; default SALES_AUTH_URL")
    client_id: str | None = Field(default=None, description="default SALES_CLIENT_ID")
    client_secret: str | None = Field(default=None, description="default SALES_CLIENT_SECRET")
    max_results: int = Field(default=500, ge=1, description="page size (max_results)")
    transaction_statuses: list[str] = Field(
        default=list(TRANSACTION_STATUSES),
        description="asked one at a time; empty = no filter (Hotmart then returns APPROVED and COMPLETE only)",
    )
    requests_per_minute: int = Field(default=500, ge=1, description="Hotmart allows 500 calls per minute")
    timeout_seconds: float = 60.0
    attempts: int = 6
    backoff_seconds: float = 2.0

    def resolved_api_url(self) -> str:
        return (self.api_url or settings.env("SALES_API_URL", SALES_API_URL)).rstrip("/")

    def resolved_auth_url(self) -> str:
        return self.auth_url or settings.env("SALES_AUTH_URL", SALES_AUTH_URL)

    def has_credentials(self) -> bool:
        client_id = self.client_id or settings.env("SALES_CLIENT_ID")
        return bool(client_id and (self.client_secret or settings.env("SALES_CLIENT_SECRET")))

    def client(self, logger: logging.Logger | logging.LoggerAdapter | None = None) -> HotmartClient:
        client_id = self.client_id or settings.env("SALES_CLIENT_ID")
        secret = self.client_secret or settings.env("SALES_CLIENT_SECRET")
        if not client_id or not secret:
            raise SourceError("Hotmart: set SALES_CLIENT_ID and SALES_CLIENT_SECRET (or the resource's fields)")
        logger = logger or logging.getLogger(__name__)
        http = HttpClient(
            name="Hotmart",
            timeout=self.timeout_seconds,
            attempts=self.attempts,
            backoff_seconds=self.backoff_seconds,
            retry_statuses=RETRYABLE_STATUSES,
            rate_limiter=RateLimiter(self.requests_per_minute, 60.0),
            logger=logger,
        )
        http.session.hooks["response"].append(_raise_on_401)
        return HotmartClient(
            http=http,
            api_url=self.resolved_api_url(),
            auth_url=self.resolved_auth_url(),
            client_id=client_id,
            client_secret=secret,
            max_results=self.max_results,
            statuses=tuple(self.transaction_statuses),
            logger=logger,
        )


@dataclass
class HotmartClient:
    http: HttpClient
    api_url: str
    auth_url: str
    client_id: str
    client_secret: str
    max_results: int
    statuses: tuple[str, ...] = TRANSACTION_STATUSES
    logger: logging.Logger | logging.LoggerAdapter = field(default_factory=lambda: logging.getLogger(__name__))
    token_requests: int = 0
    _token: str | None = None
    _token_valid_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- token

    def token(self) -> str:
        """The cached access token, renewed shortly before `expires_in` runs out."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._token_valid_until:
                self._token, lifetime = self._request_token()
                # Renew a minute early (a tenth of the lifetime for short-lived tokens).
                self._token_valid_until = time.monotonic() + lifetime - min(60.0, lifetime / 10)
                self.http.session.headers["Authorization"] = f"Bearer {self._token}"
            return self._token

    def forget_token(self) -> None:
        with self._lock:
            self._token = None

    def _request_token(self) -> tuple[str, float]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        params = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        where = f"Hotmart token endpoint {self.auth_url.split('?')[0]}"
        last = ""
        for attempt in range(1, self.http.attempts + 1):
            if self.http.rate_limiter is not None:
                self.http.rate_limiter.acquire()
            self.token_requests += 1
            try:
                # A session of its own: the API session's 401 hook and bearer header stay out of it.
                # Not streamed: the body is read here, so a body cut short is retried like a reset.
                response = requests.post(
                    self.auth_url,
                    params=params,
                    headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                    timeout=self.http.timeout,
                )
            except RETRYABLE_TRANSPORT_ERRORS as error:
                last = type(error).__name__  # its text would quote the URL, secret included
            else:
                if response.status_code in (400, 401, 403):
                    raise SourceError(
                        f"{where}: HTTP {response.status_code}: the client credentials were refused "
                        "(check SALES_CLIENT_ID / SALES_CLIENT_SECRET)"
                    ) from None
                if response.status_code not in RETRYABLE_STATUSES:
                    return self._parse_token(response, where)
                last = f"HTTP {response.status_code}"
            pause = min(self.http.backoff_seconds * 2 ** (attempt - 1), self.http.max_backoff_seconds)
            if attempt < self.http.attempts:
                self.logger.warning(f"{where}: attempt {attempt} failed ({last}); retrying in {pause:.1f} s")
                time.sleep(pause)
        raise SourceError(f"{where}: gave up after {self.http.attempts} attempts ({last})") from None

    @staticmethod
    def _parse_token(response: requests.Response, where: str) -> tuple[str, float]:
        try:
            body = response.json()
            token, lifetime = body["access_token"], float(body.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"{where}: HTTP {response.status_code} without an access_token") from None
        if not isinstance(token, str) or not token:
            raise SourceError(f"{where}: empty access_token")
        return token, lifetime

    # ---- API

    def get(self, endpoint: str, params: Mapping[str, Any]) -> requests.Response:
        """GET an endpoint with the bearer token; a 401 renews the token and tries once more."""
        url = f"{self.api_url}/{endpoint}"
        for attempt in (1, 2):
            self.token()
            try:
                return self.http.get(url, params)
            except TokenRejected:
                if attempt == 2:
                    raise SourceError(f"Hotmart: {endpoint} refused a freshly issued token (HTTP 401)") from None
                self.logger.info(f"Hotmart: token rejected by {endpoint}; requesting a new one")
                self.forget_token()
        raise AssertionError("unreachable")

    def pages(
        self, endpoint: str, window: tuple[int, int], status: str | None = None, **filters: Any
    ) -> Iterator[SalesPage]:
        """Every page of `endpoint` for orders within `window` (epoch ms, inclusive), with `status`."""
        params: dict[str, Any] = {"start_date": window[0], "end_date": window[1], "max_results": self.max_results}
        if status:
            params["transaction_status"] = status
        params.update(filters)
        token, seen, number = None, set(), 1
        while True:
            response = self.get(endpoint, {**params, **({"page_token": token} if token else {})})
            page = parse_page(response.content, endpoint, status, number)
            yield page
            token = page.next_page_token
            if not token:
                return
            if token in seen:
                raise SalesPageError(f"Hotmart {endpoint}: page token {token!r} came twice; paging would loop")
            seen.add(token)
            number += 1

    def window_pages(self, endpoint: str, window: tuple[int, int]) -> Iterator[SalesPage]:
        """All pages of the window, one listing per configured status (or one unfiltered)."""
        for status in self.statuses or (None,):
            yield from self.pages(endpoint, window, status)


def parse_page(body: bytes, endpoint: str, status: str | None, number: int) -> SalesPage:
    where = f"Hotmart {endpoint} page {number}" + (f" ({status})" if status else "")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise SalesPageError(f"{where}: the body is not valid JSON ({error}); first bytes: {body[:80]!r}") from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise SalesPageError(f"{where}: expected an object with an 'items' list")
    info = document.get("page_info") or {}
    if not isinstance(info, dict):
        raise SalesPageError(f"{where}: 'page_info' is not an object")
    total = info.get("total_results")
    return SalesPage(
        endpoint=endpoint,
        status=status,
        number=number,
        body=body,
        items=document["items"],
        total_results=total if isinstance(total, int) else None,
        next_page_token=info.get("next_page_token") or None,
    )
