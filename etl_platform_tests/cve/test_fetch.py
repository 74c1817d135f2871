"""Fetching a day into the raw layer: paging, resuming kept pages, a result set that moves."""

from __future__ import annotations

import logging

import pytest
from upath import UPath

from etl_platform.defs.cve.fetch import DayChangedWhilePaging, fetch_day
from etl_platform.defs.cve.partitions import day_window
from etl_platform.devservers.nvd import Fault
from etl_platform.lib.http import SourceError
from etl_platform_tests.cve.conftest import SAMPLE_DAY, fast_nvd

log = logging.getLogger("test")


@pytest.fixture
def folder(tmp_path) -> UPath:
    return UPath(tmp_path / "raw" / SAMPLE_DAY)


def fetch(nvd, folder, **options):
    client = fast_nvd(nvd.url, results_per_page=10, **options).client()
    return fetch_day(client, folder, SAMPLE_DAY, day_window(SAMPLE_DAY), log)


def start_indexes(nvd) -> list[int]:
    return [int(r["params"].get("startIndex", 0)) for r in nvd.requests]


def test_pages_are_kept_byte_for_byte_as_the_api_sent_them(nvd, folder):
    day = fetch(nvd, folder)

    assert (day.total_results, day.records, len(day.pages)) == (38, 38, 4)
    assert (folder / "page-000000000.json").read_bytes().startswith(b"{")


def test_the_day_window_is_sent_as_nvd_documents_it(nvd, folder):
    fetch(nvd, folder)

    params = nvd.requests[0]["params"]
    assert params["lastModStartDate"] == "2023-10-18T00:00:00.000Z"
    assert params["lastModEndDate"] == "2023-10-18T23:59:59.999Z"
    assert params["resultsPerPage"] == "10"


def test_the_api_key_goes_in_the_apikey_header(nvd, folder):
    fetch(nvd, folder, api_key="secret-key")

    assert nvd.requests[0]["headers"].get("apiKey") == "secret-key"
    assert "secret-key" not in str(nvd.requests[0]["params"])


def test_an_interrupted_day_resumes_from_the_first_missing_page(nvd, folder):
    nvd.inject(Fault.status(500), times=2, start_index=20)
    with pytest.raises(SourceError):
        fetch(nvd, folder, attempts=2)
    assert start_indexes(nvd) == [0, 10, 20, 20]

    day = fetch(nvd, folder)

    assert start_indexes(nvd)[4:] == [20, 30]
    assert (day.resumed_pages, day.records, day.total_results) == (2, 38, 38)


def test_a_total_that_changes_while_paging_repages_the_day(nvd, folder):
    nvd.inject(Fault.total_changes(1), start_index=10)

    day = fetch(nvd, folder)

    assert day.repaged == 1
    assert day.records == day.total_results == 39
    assert start_indexes(nvd).count(0) == 2


def test_a_result_set_that_keeps_changing_fails_rather_than_loading_short(nvd, folder):
    nvd.inject(Fault.total_changes(1), times=20)

    with pytest.raises(DayChangedWhilePaging, match="changed"):
        fetch(nvd, folder)


def test_an_empty_day_keeps_one_empty_page(nvd, tmp_path):
    folder = UPath(tmp_path / "empty")
    client = fast_nvd(nvd.url).client()

    day = fetch_day(client, folder, "2025-06-01", day_window("2025-06-01"), log)

    assert (day.total_results, day.records, [p.name for p in day.pages]) == (0, 0, ["page-000000000.json"])


def test_a_truncated_body_is_asked_again_then_fails_clearly(nvd, folder):
    nvd.inject(Fault.truncated(), times=3)

    with pytest.raises(SourceError, match="not valid JSON"):
        fetch(nvd, folder)
    assert not list(folder.iterdir()) if folder.exists() else True
