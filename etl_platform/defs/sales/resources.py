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
- 500 calls per minute; 429 and 5xx are retried by `lib/http.py`, honouring `Retry-After`;
  a 401 is renewed there too, through `HotmartAuth`.

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
from pydantic import Field

from etl_platform.lib.http import HttpClient, HttpResource, RateLimiter, SourceError

SALES_API_URL = "https://developers.hotmart.com/payments/api/v1"
SALES_AUTH_URL = "https://api-sec-vlc.hotmart.com/security/oauth/token"
# Every documented `transaction_status` (Hotmart spells UNDER_ANALISYS this way).
TRANSACTION_STATUSES = (
    "APPROVED", "BLOCKED", "CANCELLED", "CHARGEBACK", "COMPLETE", "EXPIRED", "NO_FUNDS", "OVERDUE",
    "PARTIALLY_REFUNDED", "PRE_ORDER", "PRINTED_BILLET", "PROCESSING_TRANSACTION", "PROTESTED",
    "REFUNDED", "STARTED", "UNDER_ANALISYS", "WAITING_PAYMENT",
)  # fmt: skip
ENDPOINTS = ("sales/history", "sales/users", "sales/commissions", "sales/price/details")


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


class HotmartResource(HttpResource):
    """Hotmart sales API (bound to `SALES_API_URL`, `SALES_AUTH_URL`, `SALES_CLIENT_ID`,
    `SALES_CLIENT_SECRET` and `SALES_START_DATE` when set)."""

    api_url: str = Field(default=SALES_API_URL, description="API base up to /payments/api/v1 (SALES_API_URL)")
    auth_url: str = Field(default=SALES_AUTH_URL, description="full token URL (SALES_AUTH_URL)")
    client_id: str | None = Field(default=None, description="SALES_CLIENT_ID")
    client_secret: str | None = Field(default=None, description="SALES_CLIENT_SECRET")
    start_date: str | None = Field(
        default=None,
        description="ISO date or date-time the very first run starts from (SALES_START_DATE); default 30 days back",
    )
    max_results: int = Field(default=500, ge=1, description="page size (max_results)")
    transaction_statuses: list[str] = Field(
        default=list(TRANSACTION_STATUSES),
        description="asked one at a time; empty = no filter (Hotmart then returns APPROVED and COMPLETE only)",
    )
    requests_per_minute: int = Field(default=500, ge=1, description="Hotmart allows 500 calls per minute")

    def resolved_api_url(self) -> str:
        """The API base without a trailing slash."""
        return self.api_url.rstrip("/")

    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def client(self, logger: logging.Logger | logging.LoggerAdapter | None = None) -> HotmartClient:
        if not self.client_id or not self.client_secret:
            raise SourceError("Hotmart: set SALES_CLIENT_ID and SALES_CLIENT_SECRET (or the resource's fields)")
        logger = logger or logging.getLogger(__name__)
        # The token endpoint counts against the same limit, through a client of its own: no bearer
        # header, and its query (the secret, as Hotmart documents) never quoted.
        limiter = RateLimiter(self.requests_per_minute, 60.0)
        token_http = self.http_client(
            f"Hotmart token endpoint {self.auth_url.split('?')[0]}", logger, rate_limiter=limiter, secret_query=True
        )
        auth = HotmartAuth(token_http, self.auth_url, self.client_id, self.client_secret)
        return HotmartClient(
            http=self.http_client("Hotmart", logger, rate_limiter=limiter, auth=auth),
            auth=auth,
            api_url=self.resolved_api_url(),
            max_results=self.max_results,
            statuses=tuple(self.transaction_statuses),
        )


@dataclass
class HotmartAuth:
    """The client-credentials token as `HttpClient` renews it: cached until shortly before
    `expires_in`, requested anew after a 401."""

    http: HttpClient
    url: str
    client_id: str
    client_secret: str = field(repr=False)
    _token: str | None = field(default=None, repr=False)
    _valid_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self) -> str:
        """The cached access token, renewed shortly before `expires_in` runs out."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._valid_until:
                self._token, lifetime = self._request_token()
                # Renew a minute early (a tenth of the lifetime for short-lived tokens).
                self._valid_until = time.monotonic() + lifetime - min(60.0, lifetime / 10)
            return self._token

    # ---- TokenAuth

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def renew(self) -> None:
        with self._lock:
            self._token = None

    def refused(self, where: str) -> SourceError:
        return SourceError(f"Hotmart: {where} refused a freshly issued token (HTTP 401)")

    # ---- the token request

    def _request_token(self) -> tuple[str, float]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        params = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        headers = {"Authorization": f"Basic {basic}"}
        refused = frozenset({400, 401, 403})
        response = self.http.send("POST", self.url, params=params, headers=headers, passthrough=refused)
        if response.status_code in refused:
            raise SourceError(
                f"{self.http.name}: HTTP {response.status_code}: the client credentials were refused "
                "(check SALES_CLIENT_ID / SALES_CLIENT_SECRET)"
            )
        return self._parse_token(response, self.http.name)

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


@dataclass
class HotmartClient:
    http: HttpClient
    auth: HotmartAuth
    api_url: str
    max_results: int
    statuses: tuple[str, ...] = TRANSACTION_STATUSES

    @property
    def token_requests(self) -> int:
        """Requests sent to the token endpoint, retries included."""
        return self.auth.http.requests_sent

    def token(self) -> str:
        return self.auth.token()

    def get(self, endpoint: str, params: Mapping[str, Any]) -> requests.Response:
        """GET an endpoint with the bearer token; a 401 renews the token and tries once more."""
        return self.http.get(f"{self.api_url}/{endpoint}", params)

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
