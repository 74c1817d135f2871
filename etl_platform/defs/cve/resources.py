"""The NVD CVE API 2.0 client, as a Dagster resource.

https://nvd.nist.gov/developers/vulnerabilities — `lastModStartDate` / `lastModEndDate`
(at most 120 days apart), paged with `startIndex` / `resultsPerPage` (at most 2000), the key
in an `apiKey` header. NVD allows 5 requests per rolling 30 s without a key, 50 with one,
and often signals throttling with 403 or 503 and no `Retry-After`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import simdjson
from pydantic import Field

from etl_platform.lib.http import RETRYABLE_STATUSES, HttpClient, HttpResource, RateLimiter, SourceError

NVD_API_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"
MAX_RESULTS_PER_PAGE = 2000


class NvdPageError(SourceError):
    """A page that is not what the API 2.0 schema promises (not JSON, wrong shape, short)."""


@dataclass(frozen=True)
class NvdPage:
    """One page as the API sent it (`body`, kept byte for byte) and its parsed header."""

    start_index: int
    total_results: int
    count: int
    body: bytes


def nvd_timestamp(moment: datetime) -> str:
    """Extended ISO-8601 with milliseconds and an explicit UTC offset, as NVD documents."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_page(body: bytes, start_index: int, where: str) -> NvdPage:
    """Check one response body; raise `NvdPageError` saying what is wrong.

    simdjson validates the whole document without building Python objects for the records:
    the raw layer only needs to know the page is sound and how many records it holds.
    """
    try:
        document = simdjson.Parser().parse(body)
    except ValueError as error:
        raise NvdPageError(f"{where}: the body is not valid JSON ({error}); first bytes: {body[:80]!r}") from error
    if not isinstance(document, simdjson.Object):
        raise NvdPageError(f"{where}: expected a JSON object, got {type(document).__name__}")
    vulnerabilities = document.get("vulnerabilities")
    total = document.get("totalResults")
    if not isinstance(vulnerabilities, simdjson.Array) or not isinstance(total, int):
        raise NvdPageError(f"{where}: the page has no 'vulnerabilities' list or no integer 'totalResults'")
    if document.get("startIndex", start_index) != start_index:
        raise NvdPageError(f"{where}: asked for startIndex {start_index}, got {document.get('startIndex')}")
    return NvdPage(start_index, total, len(vulnerabilities), body)


class NvdResource(HttpResource):
    """NVD CVE API 2.0 (bound in definitions.py to `NVD_API_URL` and `NVD_API_KEY` when set)."""

    api_url: str = Field(default=NVD_API_URL, description="base URL (NVD_API_URL)")
    api_key: str | None = Field(default=None, description="API key, sent as the apiKey header (NVD_API_KEY)")
    results_per_page: int = Field(default=MAX_RESULTS_PER_PAGE, ge=1, le=MAX_RESULTS_PER_PAGE)
    requests_per_window: int | None = Field(
        default=None, description="rate limit; default 5 per window without a key, 50 with one"
    )
    window_seconds: float = Field(default=30.0, description="the rate limit's rolling window")
    attempts: int = 8
    backoff_seconds: float = 6.0

    def client(self, logger: logging.Logger | logging.LoggerAdapter | None = None) -> NvdClient:
        http = self.http_client(
            "NVD",
            logger or logging.getLogger(__name__),
            headers={"apiKey": self.api_key} if self.api_key else {},
            # NVD throttles with 403 as often as with 429 or 503.
            retry_statuses=RETRYABLE_STATUSES | {403},
            rate_limiter=RateLimiter(self.requests_per_window or (50 if self.api_key else 5), self.window_seconds),
        )
        return NvdClient(http=http, url=self.api_url, results_per_page=self.results_per_page)


@dataclass
class NvdClient:
    http: HttpClient
    url: str
    results_per_page: int

    def page(self, window: tuple[datetime, datetime], start_index: int) -> NvdPage:
        """The page at `start_index` of the CVEs last modified within `window`."""
        params = {
            "lastModStartDate": nvd_timestamp(window[0]),
            "lastModEndDate": nvd_timestamp(window[1]),
            "startIndex": start_index,
            "resultsPerPage": self.results_per_page,
        }
        response = self.http.get(self.url, params)
        where = f"NVD page startIndex={start_index} of {params['lastModStartDate']}..{params['lastModEndDate']}"
        return parse_page(response.content, start_index, where)
