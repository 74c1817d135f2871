"""HTTP access to source APIs: one session, explicit timeouts, a per-source rate limit, retries.

Retried: the statuses of `retry_statuses` and the transport faults of `RETRYABLE_TRANSPORT_ERRORS`
(no answer, or an answer cut short). Retries honour `Retry-After`, otherwise back off exponentially
with jitter. Every attempt, retries included, passes the rate limiter, because the source counts
every request. A source with bearer tokens gives the client a `TokenAuth`: on a 401 the client
asks it to renew the token once and sends the request again.
Secrets travel only in headers (or, for a token request, a query the client never quotes), which
are never logged.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import requests
from dagster import ConfigurableResource
from pydantic import Field
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transport faults another attempt may cure, for every client of a source: no connection, a reset,
# a timeout, or a body cut short (headers and part of the body, then the connection closed: urllib3's
# IncompleteRead, raised by requests as ChunkedEncodingError for Content-Length and chunked bodies alike).
# ContentDecodingError stays out: it means bytes that did all arrive are not in the encoding the headers
# name (a cut body is reported as above first), a server or proxy fault that another request repeats.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[requests.RequestException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class SourceError(RuntimeError):
    """A source answered something the pipeline cannot use; the message says what and where."""


class RetryableStatus(SourceError):
    """A status worth another attempt (throttling, a passing server fault)."""

    def __init__(self, message: str, status: int, retry_after: float | None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Unauthorized(SourceError):
    """HTTP 401: the source refused the credentials or the token sent."""


class TokenAuth(Protocol):
    """A source's bearer token, as `HttpClient` asks for it."""

    def headers(self) -> Mapping[str, str]:
        """The headers carrying the current token (obtained first when none is held)."""

    def renew(self) -> None:
        """Replace the token the source just refused with a 401."""

    def refused(self, where: str) -> SourceError:
        """The error to raise when the renewed token is refused too."""


class RateLimiter:
    """At most `max_calls` calls in any rolling window of `period` seconds (thread-safe)."""

    def __init__(self, max_calls: int, period: float, clock: Callable[[], float] = time.monotonic):
        if max_calls < 1 or period <= 0:
            raise ValueError("a rate limit needs max_calls >= 1 and period > 0")
        self.max_calls = max_calls
        self.period = period
        self._clock = clock
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a call is allowed; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._calls and now - self._calls[0] >= self.period:
                    self._calls.popleft()
                if len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    return waited
                pause = self.period - (now - self._calls[0])
            time.sleep(pause)
            waited += pause


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # the obsolete asctime form carries no zone; HTTP dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


@dataclass
class HttpClient:
    """Requests to one source with timeouts, rate limit, retries and (with `auth`) token renewal.

    `secret_query`: the query holds a secret (a token request), so messages and logs name the URL
    without it and a transport fault by its type only. `requests_sent` counts attempts, retries included.
    """

    name: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    attempts: int = 6
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 120.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    rate_limiter: RateLimiter | None = None
    logger: logging.Logger | logging.LoggerAdapter = log
    auth: TokenAuth | None = None
    secret_query: bool = False
    requests_sent: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "etl-platform"})
        self.session.headers.update(self.headers)

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        """GET with retries; raises `SourceError` with the last failure when attempts run out."""
        return self.send("GET", url, params=params)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        passthrough: frozenset[int] = frozenset(),
        attempts: int | None = None,
        authenticated: bool = True,
    ) -> requests.Response:
        """One request, retried; statuses in `passthrough` are handed back instead of failing.

        With `auth` (and `authenticated`, false for the auth flow's own requests), a 401 renews
        the token once and sends the request again; a second 401 raises `auth.refused(...)`.
        """
        send = functools.partial(self._retried, method, url, params, json, passthrough, attempts or self.attempts)
        if self.auth is None or not authenticated:
            return send(headers)
        try:
            return send({**(headers or {}), **self.auth.headers()})
        except Unauthorized:
            self.logger.info(f"{self.name}: HTTP 401 from {method} {url}; renewing the token")
            self.auth.renew()
        try:
            return send({**(headers or {}), **self.auth.headers()})
        except Unauthorized as error:
            raise self.auth.refused(f"{method} {url}") from error

    def _retried(self, method, url, params, json, passthrough, attempts, headers) -> requests.Response:
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception_type((RetryableStatus, *RETRYABLE_TRANSPORT_ERRORS)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, params, json, headers, passthrough)
        except (RetryableStatus, *RETRYABLE_TRANSPORT_ERRORS) as error:
            if self.secret_query:
                raise SourceError(f"{self.name}: gave up after {attempts} attempts ({self._describe(error)})") from None
            if isinstance(error, RetryableStatus):
                raise SourceError(f"{self.name}: gave up after {attempts} attempts: {error}") from error
            raise SourceError(
                f"{self.name}: gave up after {attempts} attempts on {url}: {type(error).__name__}: {error}"
            ) from error

    def _attempt(self, method, url, params, json, headers, passthrough) -> requests.Response:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        self.requests_sent += 1
        # Not streamed: the whole body is read here, so a body cut short fails this attempt, not the caller.
        response = self.session.request(method, url, params=params, json=json, headers=headers, timeout=self.timeout)
        status = response.status_code
        if status in passthrough:
            return response
        shown = url if self.secret_query else response.url
        if status in self.retry_statuses:
            raise RetryableStatus(
                f"HTTP {status} from {shown}", status, parse_retry_after(response.headers.get("Retry-After"))
            )
        if status >= 400:
            detail = "" if self.secret_query else f": {response.headers.get('message') or response.text[:300]}"
            raise (Unauthorized if status == 401 else SourceError)(f"{self.name}: HTTP {status} from {shown}{detail}")
        return response

    def _describe(self, error: BaseException | None) -> str:
        # A transport fault's text quotes the URL, query included.
        if self.secret_query and not isinstance(error, SourceError):
            return type(error).__name__
        return str(error)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableStatus) and error.retry_after is not None:
            return min(error.retry_after, self.max_backoff_seconds)
        return wait_exponential_jitter(
            initial=self.backoff_seconds, max=self.max_backoff_seconds, jitter=self.backoff_seconds
        )(state)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0
        self.logger.warning(
            f"{self.name}: attempt {state.attempt_number} failed ({self._describe(error)}); retrying in {pause:.1f} s"
        )


class HttpResource(ConfigurableResource):
    """The part of a source's resource that configures its `HttpClient`: timeout and retries."""

    timeout_seconds: float = Field(default=60.0, description="seconds to wait for an answer")
    attempts: int = Field(default=6, description="tries per request, the first included")
    backoff_seconds: float = Field(default=2.0, description="first pause between tries; grows exponentially")

    def http_client(
        self, name: str, logger: logging.Logger | logging.LoggerAdapter | None = None, **options: Any
    ) -> HttpClient:
        """A client of source `name` with this resource's timeout and retries (and `options`)."""
        return HttpClient(
            name=name,
            timeout=self.timeout_seconds,
            attempts=self.attempts,
            backoff_seconds=self.backoff_seconds,
            logger=logger or log,
            **options,
        )
