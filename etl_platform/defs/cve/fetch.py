"""Fetch one day of CVEs page by page into the raw layer, resuming what an earlier attempt kept.

Each page is kept byte for byte as `page-<startIndex>.json` in the day's folder as soon as it
arrives, so memory holds one page at a time and an interrupted day continues from the
first missing page. If NVD's `totalResults` changes while paging (records modified meanwhile),
the pages kept so far describe a different result set: the day is paged again from the start,
never loaded short.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import simdjson
from upath import UPath

from etl_platform.defs.cve.parse import schema_drift
from etl_platform.defs.cve.resources import NvdClient, NvdPage, NvdPageError, nvd_timestamp, parse_page
from etl_platform.lib import raw_pages

# The list of records in each page NVD sends.
PAGE_FIELD = "vulnerabilities"
MAX_REPAGES = 3
MALFORMED_RETRIES = 2


class DayChangedWhilePaging(RuntimeError):
    """NVD kept changing the day's result set; loading it now would load it short."""


@dataclass
class KeptPage:
    name: str
    start_index: int
    count: int
    total_results: int


@dataclass
class DayFetch:
    """What fetching a day did; becomes the raw manifest and the materialization metadata."""

    partition: str
    window: tuple[datetime, datetime]
    total_results: int = 0
    pages: list[KeptPage] = field(default_factory=list)
    requests: int = 0
    resumed_pages: int = 0
    repaged: int = 0
    # Keys the parser does not model: path -> records carrying it and an example CVE id.
    drift: dict[str, dict] = field(default_factory=dict)

    def keep(self, page: KeptPage, body: bytes) -> None:
        """Count a kept page in, noting the keys of its records the parser does not model."""
        self.pages.append(page)
        # simdjson walks the keys lazily: no Python object is built for the records.
        schema_drift(simdjson.Parser().parse(body).get(PAGE_FIELD) or (), self.drift)

    @property
    def records(self) -> int:
        return sum(page.count for page in self.pages)

    def manifest(self, source: str, folder: UPath) -> dict:
        return raw_pages.manifest(
            partition=self.partition,
            source=source,
            params={"lastModStartDate": nvd_timestamp(self.window[0]), "lastModEndDate": nvd_timestamp(self.window[1])},
            folder=folder,
            pages=[page.name for page in self.pages],
            records=self.records,
            requests=self.requests,
            total_results=self.total_results,
            resumed_pages=self.resumed_pages,
            repaged=self.repaged,
            schema_drift=self.drift,
        )


def page_name(start_index: int) -> str:
    return raw_pages.page_name(start_index, digits=9)


def resumable_pages(folder: UPath, log: logging.Logger | logging.LoggerAdapter) -> list[KeptPage]:
    """The contiguous run of readable pages from startIndex 0 that an earlier attempt left."""
    names = raw_pages.kept_pages(folder)
    kept: list[KeptPage] = []
    expected = 0
    for name in names:
        try:
            page = parse_page((folder / name).read_bytes(), expected, f"kept page {name}")
        except NvdPageError as error:
            log.warning(f"ignoring kept pages from {name} on: {error}")
            break
        if name != page_name(expected) or (kept and page.total_results != kept[0].total_results):
            break
        kept.append(KeptPage(name, expected, page.count, page.total_results))
        expected += page.count
    for stale in names[len(kept):]:
        (folder / stale).unlink()
    return kept


def fetch_day(
    client: NvdClient,
    folder: UPath,
    partition: str,
    window: tuple[datetime, datetime],
    log: logging.Logger | logging.LoggerAdapter,
    fresh: bool = False,
) -> DayFetch:
    """Page through the day into `folder`; `fresh` discards what an earlier run kept."""
    if fresh:
        raw_pages.clear_folder(folder)
    day = DayFetch(partition=partition, window=window)
    for page in resumable_pages(folder, log):
        day.keep(page, (folder / page.name).read_bytes())
    day.resumed_pages = len(day.pages)
    if day.pages:
        log.info(f"resuming {partition} after {len(day.pages)} kept page(s), {day.records} record(s)")
    while True:
        total = day.pages[0].total_results if day.pages else None
        if total is not None and day.records >= total:
            day.total_results = total
            return day
        page = _fetch_page(client, window, day.records, day)
        if total is not None and page.total_results != total:
            _repage(folder, day, log, f"totalResults went from {total} to {page.total_results}")
            continue
        if page.count == 0 and page.total_results > day.records:
            _repage(folder, day, log, f"empty page at startIndex {day.records} of {page.total_results}")
            continue
        name = raw_pages.write_page(folder, page_name(page.start_index), page.body)
        day.keep(KeptPage(name, page.start_index, page.count, page.total_results), page.body)
        log.info(f"{partition}: kept {name} ({day.records}/{page.total_results} records)")
        if page.total_results == 0:
            return day


def _fetch_page(client: NvdClient, window, start_index: int, day: DayFetch) -> NvdPage:
    # A malformed body is usually a connection cut short: ask again before failing the day.
    for attempt in range(MALFORMED_RETRIES + 1):
        day.requests += 1
        try:
            return client.page(window, start_index)
        except NvdPageError:
            if attempt == MALFORMED_RETRIES:
                raise
    raise AssertionError("unreachable")


def _repage(folder: UPath, day: DayFetch, log, reason: str) -> None:
    day.repaged += 1
    if day.repaged > MAX_REPAGES:
        raise DayChangedWhilePaging(
            f"{day.partition}: {reason}; the result set changed {day.repaged} times while paging. "
            "Nothing was loaded; run the partition again later."
        )
    log.warning(f"{day.partition}: {reason}; paging the day again from the start")
    raw_pages.clear_folder(folder)
    day.pages.clear()
    day.drift.clear()
