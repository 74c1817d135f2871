"""The NVD CVE API 2.0 stand-in, exercised over real loopback HTTP."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from etl_platform.devservers import NvdStandIn
from etl_platform.devservers.nvd import API_PATH, Fault, sample_records

SAMPLE_DAY = {"lastModStartDate": "2023-10-18T00:00:00.000", "lastModEndDate": "2023-10-18T23:59:59.999"}
EMPTY_DAY = {"lastModStartDate": "2025-06-01T00:00:00.000", "lastModEndDate": "2025-06-01T23:59:59.999"}
SAMPLE_COUNT = 38


@pytest.fixture
def synthetic():
    with NvdStandIn(synthetic_per_day=300_000) as server:
        yield server


def get(server: NvdStandIn, timeout: float = 10, **params) -> requests.Response:
    return requests.get(server.url, params=params, timeout=timeout)


def ids(response: requests.Response) -> list[str]:
    return [item["cve"]["id"] for item in response.json()["vulnerabilities"]]


# --------------------------------------------------------------------------- normal serving


def test_serves_the_sample_day(nvd):
    response = get(nvd, **SAMPLE_DAY)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    page = response.json()
    assert {k: page[k] for k in ("resultsPerPage", "startIndex", "totalResults", "format", "version")} == {
        "resultsPerPage": SAMPLE_COUNT,
        "startIndex": 0,
        "totalResults": SAMPLE_COUNT,
        "format": "NVD_CVE",
        "version": "2.0",
    }
    assert len(page["timestamp"]) == len("2023-10-18T18:04:18.493")
    modified = [(item["cve"]["lastModified"], item["cve"]["id"]) for item in page["vulnerabilities"]]
    assert modified == sorted(modified)
    assert set(ids(response)) == {item["cve"]["id"] for item in sample_records()}


def test_empty_day_is_a_valid_empty_page(nvd):
    page = get(nvd, **EMPTY_DAY).json()

    assert (page["totalResults"], page["resultsPerPage"], page["vulnerabilities"]) == (0, 0, [])


def test_paging_covers_every_record_once(nvd):
    pages = [get(nvd, **SAMPLE_DAY, resultsPerPage=10, startIndex=start) for start in (0, 10, 20, 30)]

    assert [p.json()["resultsPerPage"] for p in pages] == [10, 10, 10, 8]
    assert all(p.json()["totalResults"] == SAMPLE_COUNT for p in pages)
    seen = [cve_id for p in pages for cve_id in ids(p)]
    assert len(seen) == len(set(seen)) == SAMPLE_COUNT


@pytest.mark.parametrize(
    "query",
    [
        "lastModStartDate=2023-10-18T00:00:00.000&lastModEndDate=2023-10-18T23:59:59.999",
        "lastModStartDate=2023-10-18T00:00:00.000Z&lastModEndDate=2023-10-18T23:59:59.999Z",
        "lastModStartDate=2023-10-18T00:00:00.000%2B00:00&lastModEndDate=2023-10-18T23:59:59.999%2B00:00",
        "lastModStartDate=2023-10-18T01:00:00.000%2B01:00&lastModEndDate=2023-10-19T00:59:59.999%2B01:00",
        "lastModStartDate=2023-10-17T20:00:00.000-04:00&lastModEndDate=2023-10-18T19:59:59.999-04:00",
    ],
    ids=["naive", "Z", "+00:00", "+01:00", "-04:00"],
)
def test_date_formats_select_the_same_day(nvd, query):
    response = requests.get(f"{nvd.url}?{query}", timeout=10)

    assert response.status_code == 200
    assert response.json()["totalResults"] == SAMPLE_COUNT


def test_window_bounds_are_inclusive(nvd):
    first, last = sorted(item["cve"]["lastModified"] for item in sample_records())[:: SAMPLE_COUNT - 1]

    page = get(nvd, lastModStartDate=first, lastModEndDate=last).json()

    assert page["totalResults"] == SAMPLE_COUNT


def test_results_per_page_is_capped_at_2000(synthetic):
    page = get(synthetic, **EMPTY_DAY, resultsPerPage=5000).json()

    assert page["resultsPerPage"] == len(page["vulnerabilities"]) == 2000


def test_cve_id_selects_one_record(nvd):
    page = get(nvd, cveId="CVE-2023-27314").json()

    assert page["totalResults"] == 1
    assert [item["cve"]["id"] for item in page["vulnerabilities"]] == ["CVE-2023-27314"]


def test_added_newer_version_replaces_the_old_one(nvd):
    newer = next(item for item in sample_records() if item["cve"]["id"] == "CVE-2023-27314")
    newer["cve"]["lastModified"] = "2025-06-01T12:00:00.000"

    nvd.add_records([newer])

    assert "CVE-2023-27314" not in ids(get(nvd, **SAMPLE_DAY))
    assert ids(get(nvd, **EMPTY_DAY)) == ["CVE-2023-27314"]


def test_concurrent_requests_are_all_served(nvd):
    with ThreadPoolExecutor(max_workers=16) as pool:
        totals = list(pool.map(lambda _: get(nvd, **SAMPLE_DAY).json()["totalResults"], range(48)))

    assert totals == [SAMPLE_COUNT] * 48


# --------------------------------------------------------------------------- parameter errors


def test_missing_end_date_answers_404_with_message(nvd):
    response = get(nvd, lastModStartDate=SAMPLE_DAY["lastModStartDate"])

    assert response.status_code == 404
    assert "lastModEndDate" in response.headers["message"]


def test_window_over_120_days_answers_404_with_message(nvd):
    response = get(nvd, lastModStartDate="2025-01-01T00:00:00.000", lastModEndDate="2025-05-01T00:00:00.001")

    assert response.status_code == 404
    assert "120 days" in response.headers["message"]


def test_window_of_exactly_120_days_is_accepted(nvd):
    response = get(nvd, lastModStartDate="2025-01-01T00:00:00.000", lastModEndDate="2025-05-01T00:00:00.000")

    assert response.status_code == 200


def test_unsupported_parameter_answers_404_with_message(nvd):
    response = get(nvd, lastModifiedStartDate="2025-01-01T00:00:00.000")

    assert response.status_code == 404
    assert "lastModifiedStartDate" in response.headers["message"]


# --------------------------------------------------------------------------- observations


def test_api_key_header_is_recorded(nvd):
    requests.get(nvd.url, params=SAMPLE_DAY, headers={"apiKey": "secret-key"}, timeout=10)

    (recorded,) = nvd.requests
    assert recorded["path"] == "/rest/json/cves/2.0"
    assert recorded["params"] == SAMPLE_DAY
    assert recorded["headers"]["apiKey"] == "secret-key"
    assert recorded["time"] == pytest.approx(time.time(), abs=10)


# --------------------------------------------------------------------------- faults


def test_429_fault_sends_retry_after_then_serves_normally(nvd):
    nvd.inject(Fault.status(429, retry_after=1))

    limited = get(nvd, **SAMPLE_DAY)
    normal = get(nvd, **SAMPLE_DAY)

    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert normal.status_code == 200 and normal.json()["totalResults"] == SAMPLE_COUNT


def test_403_fault_has_no_retry_after(nvd):
    nvd.inject(Fault.status(403))

    response = get(nvd, **SAMPLE_DAY)

    assert response.status_code == 403
    assert "Retry-After" not in response.headers


def test_fault_fires_the_requested_number_of_times(nvd):
    nvd.inject(Fault.status(503), times=2)

    assert [get(nvd, **SAMPLE_DAY).status_code for _ in range(3)] == [503, 503, 200]


def test_fault_for_a_start_index_skips_other_pages(nvd):
    nvd.inject(Fault.status(500), start_index=10)

    codes = [get(nvd, **SAMPLE_DAY, resultsPerPage=10, startIndex=start).status_code for start in (0, 10, 10)]

    assert codes == [200, 500, 200]


def test_delay_fault_trips_the_client_read_timeout(nvd):
    nvd.inject(Fault.delay(2))

    with pytest.raises(requests.ReadTimeout):
        get(nvd, timeout=0.3, **SAMPLE_DAY)
    assert get(nvd, **SAMPLE_DAY).status_code == 200


def test_malformed_fault_sends_a_body_that_is_not_json(nvd):
    nvd.inject(Fault.malformed())

    response = get(nvd, **SAMPLE_DAY)

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_truncated_fault_sends_half_the_json_with_honest_length(nvd):
    full = get(nvd, **SAMPLE_DAY).content
    nvd.inject(Fault.truncated())

    response = get(nvd, **SAMPLE_DAY)

    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) == len(full) // 2
    assert response.content.startswith(b'{"resultsPerPage": 38')
    with pytest.raises(ValueError):
        json.loads(response.content)


def raw_get(server: NvdStandIn, **params) -> tuple[list[str], bytes]:
    """(head lines, body) of one GET, read until the server closes the connection, with no client's checks."""
    request = f"GET {API_PATH}?{urlencode(params)} HTTP/1.1\r\nHost: {server.host}\r\n\r\n"
    received = b""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request.encode())
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head.decode().split("\r\n"), body


def without_timestamp(body: bytes) -> bytes:
    return re.sub(rb'"timestamp": "[^"]*"', b'"timestamp": ""', body)


def test_cut_short_fault_announces_the_whole_body_sends_half_and_hangs_up(nvd):
    full = get(nvd, **SAMPLE_DAY).content
    nvd.inject(Fault.cut_short())

    head, body = raw_get(nvd, **SAMPLE_DAY)  # returns only because the server closed the connection

    assert head[0] == "HTTP/1.1 200 OK"
    assert f"Content-Length: {len(full)}" in head
    assert without_timestamp(body) == without_timestamp(full[: len(full) // 2])


def test_chunked_cut_short_fault_hangs_up_inside_a_chunk_sized_for_the_whole_body(nvd):
    full = get(nvd, **SAMPLE_DAY).content
    nvd.inject(Fault.cut_short(chunked=True))

    head, body = raw_get(nvd, **SAMPLE_DAY)

    assert "Transfer-Encoding: chunked" in head and not any(line.startswith("Content-Length") for line in head)
    size, _, data = body.partition(b"\r\n")
    assert int(size, 16) == len(full)
    assert without_timestamp(data) == without_timestamp(full[: len(full) // 2])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_cut_short_body_is_an_incomplete_read_for_requests_then_service_resumes(nvd, chunked):
    nvd.inject(Fault.cut_short(chunked))

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        get(nvd, **SAMPLE_DAY)
    assert len(ids(get(nvd, **SAMPLE_DAY))) == SAMPLE_COUNT


def test_wrong_shape_fault_omits_vulnerabilities(nvd):
    nvd.inject(Fault.wrong_shape())

    page = get(nvd, **SAMPLE_DAY).json()

    assert page["totalResults"] == SAMPLE_COUNT
    assert "vulnerabilities" not in page


@pytest.mark.parametrize("delta", [1, 3, -2])
def test_total_changes_fault_changes_total_for_the_next_request(nvd, delta):
    nvd.inject(Fault.total_changes(delta))

    before = get(nvd, **SAMPLE_DAY).json()["totalResults"]
    after = get(nvd, **SAMPLE_DAY)

    assert (before, after.json()["totalResults"]) == (SAMPLE_COUNT, SAMPLE_COUNT + delta)
    assert len(set(ids(after))) == SAMPLE_COUNT + delta


# --------------------------------------------------------------------------- synthetic mode


def test_synthetic_mode_reports_n_records_per_day(synthetic):
    two_day_window = {"lastModStartDate": "2025-06-01T00:00:00.000", "lastModEndDate": "2025-06-03T00:00:00.000"}

    one_day = get(synthetic, **EMPTY_DAY, resultsPerPage=1).json()["totalResults"]
    two_days = get(synthetic, **two_day_window, resultsPerPage=1).json()["totalResults"]

    assert (one_day, two_days) == (300_000, 600_000)


def test_synthetic_pages_have_distinct_ids_inside_the_window(synthetic):
    pages = [get(synthetic, **EMPTY_DAY, startIndex=start).json() for start in (0, 2000, 298_000)]

    items = [item["cve"] for page in pages for item in page["vulnerabilities"]]
    assert len({cve["id"] for cve in items}) == len(items) == 6000
    start, end = EMPTY_DAY["lastModStartDate"], EMPTY_DAY["lastModEndDate"]
    assert all(start <= cve["lastModified"] <= end for cve in items)
    sample_shapes = {frozenset(item["cve"]) for item in sample_records()}
    assert {frozenset(cve) for cve in items} == sample_shapes  # real structure: metrics, configurations, ...


def test_synthetic_pages_are_deterministic(synthetic):
    first, again = (get(synthetic, **EMPTY_DAY, startIndex=4000).json() for _ in range(2))

    assert first["vulnerabilities"] == again["vulnerabilities"]


def test_synthetic_page_of_2000_is_fast(synthetic):
    session = requests.Session()
    get(synthetic, **EMPTY_DAY, resultsPerPage=1)  # warm up

    started = time.perf_counter()
    response = session.get(synthetic.url, params={**EMPTY_DAY, "startIndex": 150_000}, timeout=10)
    elapsed = time.perf_counter() - started

    assert len(response.json()["vulnerabilities"]) == 2000
    assert elapsed < 1.0  # generation itself is ~0.05 s; the rest is moving ~4 MB over loopback


# --------------------------------------------------------------------------- lifecycle


def test_stop_releases_the_port():
    with NvdStandIn() as server:
        port = server.port
        get(server, **EMPTY_DAY)  # leaves a keep-alive connection open

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_cli_prints_its_url_and_stops_on_ctrl_c():
    repo_root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "etl_platform.devservers", "nvd", "--port", "0"],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://\S+", process.stdout.readline()).group()
        assert requests.get(url, params=SAMPLE_DAY, timeout=10).json()["totalResults"] == SAMPLE_COUNT
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
