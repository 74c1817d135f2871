"""HTTP access to source APIs: one session, explicit timeouts, a per-source rate limit, retries.

Retried: the statuses of `retry_statuses` and the transport faults of `RETRYABLE_TRANSPORT_ERRORS`
(no answer, or an answer cut short). Retries honour `Retry-After`, otherwise back off exponentially
with jitter. Every attempt, retries included, passes the rate limiter, because the source counts
every request.
Secrets travel only in headers, which are never logged.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests
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
    """GETs JSON-ish resources from one source with timeouts, rate limit and retries."""

    name: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    attempts: int = 6
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 120.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    rate_limiter: RateLimiter | None = None
    logger: logging.Logger | logging.LoggerAdapter = log

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "etl-platform"})
        self.session.headers.update(self.headers)

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        """GET with retries; raises `SourceError` with the last failure when attempts run out."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type((RetryableStatus, *RETRYABLE_TRANSPORT_ERRORS)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, url, params)
        except RetryableStatus as error:
            raise SourceError(f"{self.name}: gave up after {self.attempts} attempts: {error}") from error
        except RETRYABLE_TRANSPORT_ERRORS as error:
            raise SourceError(
                f"{self.name}: gave up after {self.attempts} attempts on {url}: {type(error).__name__}: {error}"
            ) from error

    def _attempt(self, url: str, params: Mapping[str, Any] | None) -> requests.Response:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        # Not streamed: the whole body is read here, so a body cut short fails this attempt, not the caller.
        response = self.session.get(url, params=params, timeout=self.timeout)
        if response.status_code in self.retry_statuses:
            raise RetryableStatus(
                f"HTTP {response.status_code} from {response.url}",
                response.status_code,
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            detail = response.headers.get("message") or response.text[:300]
            raise SourceError(f"{self.name}: HTTP {response.status_code} from {response.url}: {detail}")
        return response

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
            f"{self.name}: attempt {state.attempt_number} failed ({error}); retrying in {pause:.1f} s"
        )
