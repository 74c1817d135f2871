"""HttpClient, RateLimiter and parse_retry_after, against real HTTP servers on loopback."""

from __future__ import annotations

import logging
import socket
import time
import types
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from etl_platform.devservers import NvdStandIn
from etl_platform.devservers.nvd import Fault
from etl_platform.lib import http as http_lib
from etl_platform.lib.http import HttpClient, RateLimiter, SourceError, Unauthorized, parse_retry_after

SAMPLE_DAY = {"lastModStartDate": "2023-10-18T00:00:00.000", "lastModEndDate": "2023-10-18T23:59:59.999"}
SECRET = "k3y-0f-the-test-9f1c2b"


def client(**overrides) -> HttpClient:
    """A client with quick backoff so retries cost milliseconds, not seconds."""
    options = {"name": "nvd", "timeout": 5.0, "attempts": 4, "backoff_seconds": 0.01, "max_backoff_seconds": 5.0}
    return HttpClient(**(options | overrides))


def request_gaps(server: NvdStandIn) -> list[float]:
    times = [r["time"] for r in server.requests]
    return [later - earlier for earlier, later in zip(times, times[1:])]


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(http_lib, "time", types.SimpleNamespace(sleep=clock.sleep, monotonic=clock))
    return clock


class CountingLimiter(RateLimiter):
    def __init__(self) -> None:
        super().__init__(max_calls=1000, period=60)
        self.acquired = 0

    def acquire(self) -> float:
        self.acquired += 1
        return super().acquire()


# --------------------------------------------------------------------------- successful calls


def test_a_plain_get_returns_the_response(nvd):
    response = client().get(nvd.url, params=SAMPLE_DAY)

    assert response.status_code == 200
    assert response.json()["totalResults"] == 38
    assert len(nvd.requests) == 1


def test_configured_headers_are_sent_with_every_request(nvd):
    client(headers={"apiKey": SECRET}).get(nvd.url, params=SAMPLE_DAY)

    headers = nvd.requests[0]["headers"]
    assert headers["apiKey"] == SECRET
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "etl-platform"


# --------------------------------------------------------------------------- retries


def test_429_with_retry_after_is_waited_out_then_retried(nvd):
    nvd.inject(Fault.status(429, retry_after=1))

    response = client(backoff_seconds=0.01).get(nvd.url, params=SAMPLE_DAY)

    assert response.status_code == 200
    assert len(nvd.requests) == 2
    [gap] = request_gaps(nvd)
    assert 0.95 <= gap < 3.0, f"Retry-After: 1 should mean a ~1 s pause, not {gap:.2f} s"


def test_retry_after_is_capped_at_max_backoff(nvd):
    nvd.inject(Fault.status(503, retry_after=30))

    started = time.monotonic()
    response = client(max_backoff_seconds=0.2).get(nvd.url, params=SAMPLE_DAY)

    assert response.status_code == 200
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(nvd, status):
    nvd.inject(Fault.status(status), times=2)

    response = client().get(nvd.url, params=SAMPLE_DAY)

    assert response.status_code == 200
    assert len(nvd.requests) == 3


def test_a_status_outside_retry_statuses_fails_at_once_with_the_servers_message(nvd):
    with pytest.raises(SourceError) as raised:
        client().get(nvd.url, params={"noSuchParameter": "1"})

    message = str(raised.value)
    assert message.startswith("nvd: HTTP 404 from ")
    assert "Unsupported parameter(s) noSuchParameter" in message
    assert len(nvd.requests) == 1


def test_retry_statuses_are_configurable(nvd):
    nvd.inject(Fault.status(503))

    with pytest.raises(SourceError, match="HTTP 503"):
        client(retry_statuses=frozenset({429})).get(nvd.url, params=SAMPLE_DAY)
    assert len(nvd.requests) == 1


def test_exhausted_attempts_raise_source_error_naming_source_and_attempts(nvd):
    nvd.inject(Fault.status(503), times=10)

    with pytest.raises(SourceError) as raised:
        client(attempts=3).get(nvd.url, params=SAMPLE_DAY)

    assert "nvd: gave up after 3 attempts" in str(raised.value)
    assert "HTTP 503" in str(raised.value)
    assert len(nvd.requests) == 3


def test_a_read_timeout_is_retried(nvd):
    nvd.inject(Fault.delay(1.0))

    response = client(timeout=0.3).get(nvd.url, params=SAMPLE_DAY)

    assert response.status_code == 200
    assert len(nvd.requests) == 2


def test_read_timeouts_on_every_attempt_raise_source_error(nvd):
    nvd.inject(Fault.delay(1.0), times=2)

    with pytest.raises(SourceError, match=r"nvd: gave up after 2 attempts .*Timeout"):
        client(timeout=0.2, attempts=2).get(nvd.url, params=SAMPLE_DAY)


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there

    with pytest.raises(SourceError, match=r"nvd: gave up after 2 attempts on http://127\.0\.0\.1.*ConnectionError"):
        client(attempts=2).get(f"http://127.0.0.1:{port}/")


def without_timestamp(page: dict) -> dict:
    return {key: value for key, value in page.items() if key != "timestamp"}  # NVD stamps every answer anew


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_cut_short_is_retried_and_read_whole(nvd, chunked):
    whole = client().get(nvd.url, params=SAMPLE_DAY).json()
    nvd.inject(Fault.cut_short(chunked))

    response = client().get(nvd.url, params=SAMPLE_DAY)

    assert without_timestamp(response.json()) == without_timestamp(whole)
    assert len(nvd.requests) == 3  # the reference, the cut answer, the retry


def test_bodies_cut_short_on_every_attempt_raise_source_error(nvd):
    nvd.inject(Fault.cut_short(), times=2)

    with pytest.raises(SourceError, match=r"nvd: gave up after 2 attempts on http://.*ChunkedEncodingError") as raised:
        client(attempts=2).get(nvd.url, params=SAMPLE_DAY)
    assert isinstance(raised.value.__cause__, requests.exceptions.ChunkedEncodingError)
    assert len(nvd.requests) == 2


def test_a_retry_after_a_body_cut_short_is_logged(nvd, caplog):
    nvd.inject(Fault.cut_short())

    with caplog.at_level(logging.WARNING, logger=http_lib.log.name):
        client().get(nvd.url, params=SAMPLE_DAY)

    [record] = [r for r in caplog.records if r.name == http_lib.log.name]
    assert record.getMessage().startswith("nvd: attempt 1 failed (")
    assert "IncompleteRead" in record.getMessage() and "retrying in " in record.getMessage()


def test_every_attempt_passes_the_rate_limiter(nvd):
    nvd.inject(Fault.status(503), times=2)
    limiter = CountingLimiter()

    client(rate_limiter=limiter).get(nvd.url, params=SAMPLE_DAY)

    assert limiter.acquired == 3


def test_each_retry_is_logged_with_source_attempt_and_pause(nvd, caplog):
    nvd.inject(Fault.status(503))

    with caplog.at_level(logging.WARNING, logger=http_lib.log.name):
        client().get(nvd.url, params=SAMPLE_DAY)

    [record] = [r for r in caplog.records if r.name == http_lib.log.name]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("nvd: attempt 1 failed (HTTP 503 from ")
    assert "retrying in " in record.getMessage()


def test_the_api_key_is_sent_but_never_logged(nvd, caplog):
    nvd.inject(Fault.status(429, retry_after=0))
    nvd.inject(Fault.delay(1.0))

    with caplog.at_level(logging.DEBUG):
        client(headers={"apiKey": SECRET}, timeout=0.3).get(nvd.url, params=SAMPLE_DAY)

    assert [r["headers"].get("apiKey") for r in nvd.requests] == [SECRET] * 3
    assert len(caplog.records) >= 2  # both retries were logged (and urllib3 debug lines)
    assert SECRET not in caplog.text
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_the_api_key_is_not_in_a_source_error(nvd):
    nvd.inject(Fault.status(503), times=5)

    with pytest.raises(SourceError) as raised:
        client(headers={"apiKey": SECRET}, attempts=2).get(nvd.url, params=SAMPLE_DAY)

    assert SECRET not in str(raised.value)
    assert SECRET not in repr(raised.value.__cause__)


# --------------------------------------------------------------------------- token renewal


class CountingAuth:
    """A `TokenAuth` handing out token-1, token-2, ... and counting renewals."""

    def __init__(self) -> None:
        self.issued = 1
        self.renewals = 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer token-{self.issued}"}

    def renew(self) -> None:
        self.renewals += 1
        self.issued += 1

    def refused(self, where: str) -> SourceError:
        return SourceError(f"refused twice: {where}")


def sent_tokens(server: NvdStandIn) -> list[str | None]:
    return [r["headers"].get("Authorization") for r in server.requests]


def test_a_401_renews_the_token_once_and_sends_the_request_again(nvd):
    nvd.inject(Fault.status(401))
    auth = CountingAuth()

    response = client(auth=auth).get(nvd.url, params=SAMPLE_DAY)

    assert response.status_code == 200
    assert auth.renewals == 1
    assert sent_tokens(nvd) == ["Bearer token-1", "Bearer token-2"]


def test_a_renewed_token_refused_again_raises_the_auths_error_instead_of_looping(nvd):
    nvd.inject(Fault.status(401), times=10)
    auth = CountingAuth()

    with pytest.raises(SourceError, match=r"^refused twice: GET http://") as raised:
        client(auth=auth).get(nvd.url, params=SAMPLE_DAY)

    assert isinstance(raised.value.__cause__, Unauthorized)
    assert auth.renewals == 1 and len(nvd.requests) == 2


def test_the_auth_flows_own_requests_carry_no_token_and_renew_nothing(nvd):
    nvd.inject(Fault.status(401))
    auth = CountingAuth()

    with pytest.raises(Unauthorized, match="HTTP 401"):
        client(auth=auth).send("GET", nvd.url, params=SAMPLE_DAY, authenticated=False)

    assert auth.renewals == 0 and sent_tokens(nvd) == [None]


def test_a_secret_query_is_never_quoted_in_errors_or_logs(nvd, caplog):
    nvd.inject(Fault.status(503), times=2)
    params = {**SAMPLE_DAY, "client_secret": SECRET}

    with caplog.at_level(logging.DEBUG, logger=http_lib.log.name):
        with pytest.raises(SourceError, match=r"^nvd: gave up after 2 attempts \(HTTP 503 from http://") as raised:
            client(attempts=2, secret_query=True).get(nvd.url, params=params)

    assert SECRET not in str(raised.value) and raised.value.__cause__ is None
    assert SECRET not in caplog.text
    assert [r["params"]["client_secret"] for r in nvd.requests] == [SECRET] * 2


def test_every_attempt_is_counted(nvd):
    nvd.inject(Fault.status(503), times=2)
    http = client()

    http.get(nvd.url, params=SAMPLE_DAY)

    assert http.requests_sent == 3


# --------------------------------------------------------------------------- rate limiter


def test_rate_limiter_allows_max_calls_then_blocks_until_the_oldest_leaves_the_window(fake_clock):
    limiter = RateLimiter(max_calls=3, period=10, clock=fake_clock)

    waits = []
    for _ in range(3):
        waits.append(limiter.acquire())
        fake_clock.now += 1  # calls at t = 0, 1, 2
    assert waits == [0.0, 0.0, 0.0]

    assert limiter.acquire() == pytest.approx(7.0)  # at t = 3: wait for the call of t = 0 to age out
    assert fake_clock.now == pytest.approx(10.0)


def test_rate_limiter_window_is_rolling_not_fixed(fake_clock):
    limiter = RateLimiter(max_calls=2, period=10, clock=fake_clock)
    limiter.acquire()  # t = 0
    fake_clock.now = 9
    limiter.acquire()  # t = 9

    assert limiter.acquire() == pytest.approx(1.0)  # t = 10: the call of t = 0 left the window
    assert limiter.acquire() == pytest.approx(9.0)  # the call of t = 9 leaves at t = 19
    assert fake_clock.now == pytest.approx(19.0)


def test_rate_limiter_does_not_wait_once_the_window_has_passed(fake_clock):
    limiter = RateLimiter(max_calls=1, period=5, clock=fake_clock)
    limiter.acquire()
    fake_clock.now = 5

    assert limiter.acquire() == 0.0
    assert fake_clock.slept == []


@pytest.mark.parametrize("max_calls, period", [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_rate_limiter_rejects_an_impossible_limit(max_calls, period):
    with pytest.raises(ValueError):
        RateLimiter(max_calls=max_calls, period=period)


def test_rate_limited_client_spaces_real_requests(nvd):
    limiter = RateLimiter(max_calls=2, period=0.3)
    http = client(rate_limiter=limiter)

    for _ in range(3):
        http.get(nvd.url, params=SAMPLE_DAY)

    times = [r["time"] for r in nvd.requests]
    assert times[2] - times[0] >= 0.28  # the third call waited for the first to leave the 0.3 s window


# --------------------------------------------------------------------------- Retry-After parsing


@pytest.mark.parametrize("value, seconds", [("1", 1.0), ("120", 120.0), (" 7 ", 7.0), ("0", 0.0)])
def test_parse_retry_after_reads_delta_seconds(value, seconds):
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_reads_an_http_date():
    when = datetime.now(timezone.utc) + timedelta(seconds=30)

    assert parse_retry_after(format_datetime(when, usegmt=True)) == pytest.approx(30, abs=1.5)


def test_parse_retry_after_reads_the_obsolete_asctime_date_as_gmt():
    # RFC 9110 makes recipients accept asctime dates, which carry no zone: they are GMT.
    when = datetime.now(timezone.utc) + timedelta(seconds=30)

    assert parse_retry_after(when.strftime("%a %b %d %H:%M:%S %Y")) == pytest.approx(30, abs=1.5)


def test_a_retry_after_date_without_a_zone_is_honoured_not_a_crash(nvd):
    nvd.inject(Fault.status(429, retry_after="Sun Nov  6 08:49:37 1994"))

    response = client().get(nvd.url, params=SAMPLE_DAY)

    assert response.status_code == 200
    assert len(nvd.requests) == 2


def test_parse_retry_after_a_date_in_the_past_means_no_wait():
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT") == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5"])
def test_parse_retry_after_ignores_missing_or_unreadable_values(value):
    assert parse_retry_after(value) is None
