"""The run window of the `sales` group and the raw pages it keeps.

The group is not partitioned: a run pulls the sales ordered from the cursor (the end of the
last window loaded into `sale`, kept in that materialization's metadata by Dagster) minus an
overlap, to now. The very first run starts at the resource's `start_date` (`SALES_START_DATE`;
default 30 days back).
Overlapping windows fetch some sales twice; the diff says which of them changed since they were
loaded (a refund within the overlap) and only those are merged again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from upath import UPath

from etl_platform.defs.sales.resources import HotmartClient, SalesPage
from etl_platform.lib import raw_pages

DEFAULT_FIRST_DAYS = 30
CURSOR_KEY = "sales/cursor_ms"


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def parse_moment(text: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC when no offset)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def first_start(now: datetime, configured: str | None = None) -> datetime:
    """`configured` (an ISO date or date-time: `SALES_START_DATE`), or midnight UTC 30 days before `now`."""
    if configured:
        return parse_moment(configured)
    return datetime.combine((now - timedelta(days=DEFAULT_FIRST_DAYS)).date(), time(), tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    start_ms: int
    end_ms: int
    cursor_before_ms: int | None  # the cursor the window continued from (None: the first run)

    @property
    def bounds(self) -> tuple[int, int]:
        return self.start_ms, self.end_ms

    def describe(self) -> str:
        return f"{from_ms(self.start_ms).isoformat()} .. {from_ms(self.end_ms).isoformat()}"

    @property
    def interval(self) -> str:
        """The window as an ISO-8601 interval (`<start>/<end>`, UTC): the run's quarantine partition."""
        return f"{from_ms(self.start_ms).isoformat()}/{from_ms(self.end_ms).isoformat()}"

    @classmethod
    def of(cls, manifest: dict) -> Window:
        """The window a raw manifest was fetched for."""
        return cls(manifest["window_start_ms"], manifest["window_end_ms"], manifest.get("cursor_before_ms"))


def run_window(
    cursor_ms: int | None,
    now: datetime,
    overlap: timedelta,
    start: datetime | None = None,
    end: datetime | None = None,
    first: str | None = None,
) -> Window:
    """From the cursor minus the overlap (or the first start, `first_start(now, first)`) to `end` (default now)."""
    end_ms = to_ms(end or now)
    if start is not None:
        start_ms = to_ms(start)
    elif cursor_ms is None:
        start_ms = to_ms(first_start(now, first))
    else:
        start_ms = cursor_ms - int(overlap.total_seconds() * 1000)
    if start_ms > end_ms:
        raise ValueError(f"the window starts after it ends: {from_ms(start_ms)} > {from_ms(end_ms)}")
    return Window(start_ms, end_ms, cursor_ms)


def run_folder_name(window: Window) -> str:
    """`<end day>/<end time>-<start ms>_<end ms>`: one folder per run, sorted by time."""
    end = from_ms(window.end_ms)
    return f"{end:%Y-%m-%d}/{end:%H%M%S}Z_{window.start_ms}_{window.end_ms}"


# The list of records in each page Hotmart sends.
PAGE_FIELD = "items"


@dataclass
class FetchedWindow:
    window: Window
    folder: UPath
    pages: list[str] = field(default_factory=list)
    records: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    def manifest(self, endpoint: str, source: str) -> dict:
        run = run_folder_name(self.window)
        return raw_pages.manifest(
            partition=run,
            source=source,
            params={"start_date": self.window.start_ms, "end_date": self.window.end_ms},
            folder=self.folder,
            pages=self.pages,
            records=self.records,
            requests=self.requests,
            endpoint=endpoint,
            run=run,
            window_start_ms=self.window.start_ms,
            window_end_ms=self.window.end_ms,
            cursor_before_ms=self.window.cursor_before_ms,
            records_by_status=self.by_status,
        )


def page_name(page: SalesPage) -> str:
    return raw_pages.page_name(page.number, prefix=f"{page.status or 'ALL'}-")


def fetch_window(client: HotmartClient, endpoint: str, window: Window, folder: UPath) -> FetchedWindow:
    """Keep every page of the window byte for byte as `folder/<status>-<n>.json`."""
    raw_pages.clear_folder(folder)  # the same window fetched again: nothing of the earlier answer lingers
    fetched = FetchedWindow(window=window, folder=folder)
    for page in client.window_pages(endpoint, window.bounds):
        fetched.pages.append(raw_pages.write_page(folder, page_name(page), page.body))
        fetched.records += len(page.items)
        fetched.requests += 1
        key = page.status or "ALL"
        fetched.by_status[key] = fetched.by_status.get(key, 0) + len(page.items)
    return fetched
