"""Loopback stand-in for the NVD CVE API 2.0 (``/rest/json/cves/2.0``).

Speaks NVD's wire format and rules (paging, the paired ``lastMod*`` window of
at most 120 days, 404 + ``message`` header on bad parameters) over real HTTP,
so clients are exercised exactly as against https://services.nvd.nist.gov.

Three uses:

* tests: serve the sample records (or your own), inject faults, and assert on
  ``nvd.requests``;
* the README demo: ``python -m etl_platform.devservers nvd --port 8900``;
* benchmarks: ``synthetic_per_day=N`` makes every requested day hold N records,
  generated page by page from the samples.

Fault semantics (see :class:`Fault`): a fault is queued with
:meth:`NvdStandIn.inject` and fires on the next ``times`` API requests (only
those asking for ``start_index`` when given). Bad-parameter 404s are checked
after status/delay faults, as a gateway would answer before the application.
"""

from __future__ import annotations

import bisect
import itertools
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from etl_platform.devservers.serving import FaultQueue, ServedInThread
from etl_platform.devservers.serving import send as _send  # hotmart imports it from here

API_PATH = "/rest/json/cves/2.0"
MAX_RESULTS_PER_PAGE = 2000
MAX_WINDOW = timedelta(days=120)
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "nvd_cve"
SAMPLE_PAGE = "page_vunnel_full_page_2023-10-18.json"
# Records of 2026 carrying blocks the 2023 page lacks: SSVC under `metrics`, a top-level `affected`.
PAGE_2026 = "page_2026_ssvc_affected.json"

# Parameters the stand-in implements. Anything else is refused (404) rather
# than silently ignored, so a misspelt parameter cannot pass a test unnoticed.
SUPPORTED_PARAMS = frozenset(
    {"lastModStartDate", "lastModEndDate", "startIndex", "resultsPerPage", "cveId", "noRejected"}
)


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class StatusFault:
    """Answer with ``code`` instead of data.

    ``retry_after`` (seconds, or an HTTP-date string) is sent as the
    ``Retry-After`` header when set; NVD's 403 rate-limit answer has none.
    """

    code: int
    retry_after: float | str | None = None
    body: str | dict | None = None


@dataclass(frozen=True)
class DelayFault:
    """Sleep ``seconds`` before answering normally (trips client read timeouts)."""

    seconds: float


@dataclass(frozen=True)
class MalformedFault:
    """200 with a body that is not JSON (an HTML error page, still labelled application/json)."""


@dataclass(frozen=True)
class TruncatedFault:
    """200 with the first half of the real body; Content-Length matches that half."""


@dataclass(frozen=True)
class CutShortFault:
    """200 whose headers announce the whole body, then half of it, then the connection closes.

    The framing promises more than arrives, as when a source or a proxy drops the connection
    mid-body: ``Content-Length`` of the whole body, or with ``chunked=True`` a chunk sized for
    the whole body. Clients see an incomplete read, not a short document.
    """

    chunked: bool = False


@dataclass(frozen=True)
class WrongShapeFault:
    """200 with the JSON envelope but no ``vulnerabilities`` key."""


@dataclass(frozen=True)
class TotalChangesFault:
    """Answer normally, then change the result set of the requested window.

    ``delta > 0`` adds that many copies of a record (new ids, ``lastModified`` =
    end of the window, or now without one), so they sort last, as a CVE
    modified mid-harvest does. ``delta < 0`` removes the first ``-delta``
    records of the window, shifting later pages. In synthetic mode it changes
    the per-day count instead.
    """

    delta: int = 1


AnyFault = (
    StatusFault | DelayFault | MalformedFault | TruncatedFault | CutShortFault | WrongShapeFault | TotalChangesFault
)


class Fault:
    """Constructors for the faults accepted by :meth:`NvdStandIn.inject`."""

    @staticmethod
    def status(
        code: int, retry_after: float | str | None = None, body: str | dict | None = None
    ) -> StatusFault:
        """HTTP ``code``; ``body`` as text or JSON (default: a JSON ``message``)."""
        return StatusFault(code, retry_after, body)

    @staticmethod
    def delay(seconds: float) -> DelayFault:
        return DelayFault(seconds)

    @staticmethod
    def malformed() -> MalformedFault:
        return MalformedFault()

    @staticmethod
    def truncated() -> TruncatedFault:
        return TruncatedFault()

    @staticmethod
    def cut_short(chunked: bool = False) -> CutShortFault:
        return CutShortFault(chunked)

    @staticmethod
    def wrong_shape() -> WrongShapeFault:
        return WrongShapeFault()

    @staticmethod
    def total_changes(delta: int = 1) -> TotalChangesFault:
        return TotalChangesFault(delta)


# --------------------------------------------------------------------------- records


def sample_records(page: str | None = None) -> list[dict]:
    """The ``vulnerabilities`` items of a sample page (default: the 38 records of 2023-10-18)."""
    path = SAMPLES_DIR / (page or SAMPLE_PAGE)
    return json.loads(path.read_text(encoding="utf-8"))["vulnerabilities"]


class _Entry(NamedTuple):
    last_modified: datetime  # naive UTC, as NVD sends it
    cve_id: str
    rejected: bool
    text: str  # the vulnerability item, serialised once when stored


def _entry(item: dict) -> _Entry:
    try:
        cve = item["cve"]
        return _Entry(
            datetime.fromisoformat(cve["lastModified"]),
            cve["id"],
            cve.get("vulnStatus") == "Rejected",
            json.dumps(item, ensure_ascii=False),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an NVD vulnerability item (needs cve.id and cve.lastModified): {exc}") from exc


def _nvd_time(moment: datetime) -> str:
    """NVD's timestamp style: naive UTC with milliseconds."""
    return moment.isoformat(timespec="milliseconds")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# --------------------------------------------------------------------------- queries


class _BadRequest(Exception):
    """Parameter error; NVD answers these with 404 and a ``message`` header."""


@dataclass(frozen=True)
class _Query:
    start: datetime | None  # naive UTC
    end: datetime | None
    start_index: int
    per_page: int
    cve_id: str | None
    no_rejected: bool


def _parse_date(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        hint = " (a '+' offset must be URL-encoded as %2B)" if " " in value else ""
        raise _BadRequest(f"Invalid {name} '{value}': expected extended ISO-8601{hint}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _parse_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise _BadRequest(f"Invalid {name} '{value}': expected a non-negative integer")
    return number


def _parse_query(params: dict[str, str]) -> _Query:
    unknown = sorted(set(params) - SUPPORTED_PARAMS)
    if unknown:
        supported = ", ".join(sorted(SUPPORTED_PARAMS))
        raise _BadRequest(f"Unsupported parameter(s) {', '.join(unknown)}; the stand-in supports {supported}")
    start_raw, end_raw = params.get("lastModStartDate"), params.get("lastModEndDate")
    if (start_raw is None) != (end_raw is None):
        raise _BadRequest("Both lastModStartDate and lastModEndDate are required when either is present")
    start = end = None
    if start_raw is not None and end_raw is not None:
        start = _parse_date("lastModStartDate", start_raw)
        end = _parse_date("lastModEndDate", end_raw)
        if end < start:
            raise _BadRequest("lastModEndDate must not be before lastModStartDate")
        if end - start > MAX_WINDOW:
            raise _BadRequest("The lastModStartDate/lastModEndDate range must not exceed 120 days")
    return _Query(
        start=start,
        end=end,
        start_index=_parse_int("startIndex", params.get("startIndex", "0")),
        per_page=min(_parse_int("resultsPerPage", params.get("resultsPerPage", "2000")), MAX_RESULTS_PER_PAGE),
        cve_id=params.get("cveId"),
        no_rejected="noRejected" in params,
    )


# --------------------------------------------------------------------------- synthetic mode

_SLOTS = ("id", "lastModified", "published", "desc", "severity", "severity_v2")
_PHRASES = (
    "Reanalysed:",
    "Vendor advisory update:",
    "Additional detail:",
    "Scope clarified:",
    "Reference added:",
)


def _compile_template(record: dict) -> tuple[str, str]:
    """Turn a record into a ``%``-format string with slots for the varied fields.

    Formatting a string is far cheaper than deep-copying and re-serialising a
    ~3 KB record, which keeps a 2000-record page at a few milliseconds.
    Returns ``(template, original published)``.
    """
    rec = json.loads(json.dumps(record))
    cve = rec["cve"]
    published = cve.get("published", cve["lastModified"])
    cve["id"], cve["lastModified"], cve["published"] = "@@id@@", "@@lastModified@@", "@@published@@"
    for description in cve.get("descriptions", []):
        if description.get("lang") == "en":
            description["value"] = "@@desc@@" + description["value"]
            break
    for entries in cve.get("metrics", {}).values():
        for metric in entries:
            data = metric.get("cvssData", {})
            if "baseScore" in data:
                data["baseScore"] = "@@score@@"
            if "baseSeverity" in data:  # CVSS v3.x / v4
                data["baseSeverity"] = "@@severity@@"
            if "baseSeverity" in metric:  # CVSS v2 keeps it beside cvssData
                metric["baseSeverity"] = "@@severity_v2@@"
    text = json.dumps(rec, ensure_ascii=False).replace("%", "%%")
    text = text.replace('"@@score@@"', "%(score)s")  # a JSON number: drop the quotes
    for slot in _SLOTS:
        text = text.replace(f"@@{slot}@@", f"%({slot})s")
    return text, published


def _severity(score: float) -> tuple[str, str]:
    """(CVSS v3 severity, CVSS v2 severity) for a base score."""
    v3 = "LOW" if score < 4 else "MEDIUM" if score < 7 else "HIGH" if score < 9 else "CRITICAL"
    v2 = "LOW" if score < 4 else "MEDIUM" if score < 7 else "HIGH"
    return v3, v2


_MS = timedelta(milliseconds=1)


def _day_segments(start: datetime, end: datetime) -> list[tuple[date, datetime, datetime]]:
    """The UTC days a window overlaps, each clipped to the window, in ms precision.

    A day counts when the window covers part of it with positive length, so a
    window ending exactly at midnight does not count the next day (a
    zero-length window counts its own day).
    """
    first = datetime(start.year, start.month, start.day)
    segments = []
    for n in range((end - first).days + 1):
        day_start = first + timedelta(days=n)
        day_end = day_start + timedelta(days=1)
        if not (start < day_end and (end > day_start or start == end)):
            continue
        lo = max(start, day_start)
        lo += (-lo.microsecond % 1000) * timedelta(microseconds=1)  # round up to whole ms
        hi = min(end, day_end - _MS)
        hi -= (hi.microsecond % 1000) * timedelta(microseconds=1)  # round down
        if lo <= hi:
            segments.append((day_start.date(), lo, hi))
    return segments


class _Synthetic:
    """``per_day`` records in every UTC day of any window, built one page at a time.

    Record ``i`` of day ``d`` is a mutated sample record with id
    ``CVE-<year>-1<day of year:03><i:06>`` (fixed width, so id order equals
    ``i`` order; 10 digits, the most a `cve_key` encodes) and a ``lastModified`` spread evenly over the day's part of the
    window; the same window therefore always yields the same records.
    """

    MAX_PER_DAY = 10**6  # the 6 digits of ``i`` in the id

    def __init__(self, records: list[dict], per_day: int):
        if not records:
            raise ValueError("synthetic mode needs at least one template record")
        if not 0 < per_day < self.MAX_PER_DAY:
            raise ValueError(f"synthetic_per_day must be between 1 and {self.MAX_PER_DAY - 1}")
        self.per_day = per_day
        self._templates = [_compile_template(r) for r in records]

    def total(self, start: datetime, end: datetime) -> int:
        return self.per_day * len(_day_segments(start, end))

    def page(self, start: datetime, end: datetime, start_index: int, count: int) -> list[str]:
        n = self.per_day  # read once: a total_changes fault may change it meanwhile
        segments = _day_segments(start, end)
        stop = min(start_index + count, n * len(segments))
        items = []
        for k in range(start_index, stop):
            day, lo, hi = segments[k // n]
            items.append(self._record(day, lo, hi, k % n, n))
        return items

    def _record(self, day: date, lo: datetime, hi: datetime, i: int, n: int) -> str:
        ordinal = day.toordinal()
        template, published = self._templates[(i + ordinal) % len(self._templates)]
        span_ms = (hi - lo) // _MS
        last_modified = _nvd_time(lo + _MS * (span_ms * i // n))
        score = (10 + (i * 37 + ordinal * 11) % 91) / 10  # 1.0 .. 10.0
        severity, severity_v2 = _severity(score)
        return template % {
            "id": f"CVE-{day.year}-1{day.timetuple().tm_yday:03d}{i:06d}",
            "lastModified": last_modified,
            "published": min(published, last_modified),  # same ISO format: string order is time order
            "desc": f"{_PHRASES[i % len(_PHRASES)]} synthetic record {i} of {day.isoformat()}. ",
            "score": score,
            "severity": severity,
            "severity_v2": severity_v2,
        }


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like NVD; every response sets Content-Length
    timeout = 60  # drop idle keep-alive connections, as real front ends do
    server: _Server

    def do_GET(self) -> None:
        self.server.standin._handle(self)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests and benchmarks make thousands of requests


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins handler threads: stop() leaves nothing running
    request_queue_size = 128  # socketserver's 5 drops bursts of parallel connects (1 s SYN retry)

    def __init__(self, address: tuple[str, int], standin: NvdStandIn):
        self.standin = standin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake handlers waiting on idle keep-alive connections so they can be joined."""
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        # Clients hanging up (read-timeout tests, stop()) are expected; report anything else.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class NvdStandIn(ServedInThread):
    """NVD CVE API 2.0 stand-in served from a daemon thread on loopback.

    ``records`` defaults to :func:`sample_records`. With ``synthetic_per_day=N``
    the stored records are only templates: every requested UTC day holds N
    generated records (requests must then carry a lastMod window).
    """

    _thread_name = "nvd-standin"

    def __init__(
        self,
        records: list[dict] | None = None,
        synthetic_per_day: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()  # guards records, faults and the request log
        self._entries: list[_Entry] = []
        self._faults = FaultQueue()
        self._requests: list[dict] = []
        self._new_ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        records = sample_records() if records is None else records
        self.replace_records(records)
        self._synthetic = _Synthetic(records, synthetic_per_day) if synthetic_per_day else None

    # ---- lifecycle (ServedInThread)

    def _make_server(self) -> _Server:
        return _Server((self.host, self._requested_port), self)

    @property
    def url(self) -> str:
        """The endpoint to GET with query parameters (nothing is appended)."""
        return f"http://{self.host}:{self.port}{API_PATH}"

    # ---- data, faults, observations

    def add_records(self, items: list[dict]) -> None:
        """Add vulnerability items; an item whose id is already stored replaces it (NVD keeps one version)."""
        self._store([_entry(item) for item in items], replace=False)

    def replace_records(self, items: list[dict]) -> None:
        """Serve exactly ``items`` from now on."""
        self._store([_entry(item) for item in items], replace=True)

    @property
    def records(self) -> list[dict]:
        """The stored vulnerability items, in serving order (copies)."""
        with self._lock:
            return [json.loads(e.text) for e in self._entries]

    def inject(self, fault: AnyFault, times: int = 1, start_index: int | None = None) -> None:
        """Make the next ``times`` API requests (for ``start_index`` only, if given) hit ``fault``."""
        self._faults.put(fault, times, start_index)

    @property
    def requests(self) -> list[dict]:
        """Snapshot of requests received: ``{"path", "params", "headers", "time"}`` dicts."""
        with self._lock:
            return list(self._requests)

    # ---- internals

    def _store(self, entries: list[_Entry], replace: bool) -> None:
        with self._lock:
            by_id = {} if replace else {e.cve_id: e for e in self._entries}
            by_id.update((e.cve_id, e) for e in entries)
            self._entries = sorted(by_id.values(), key=lambda e: (e.last_modified, e.cve_id))

    def _select(self, q: _Query) -> list[_Entry]:
        """Stored entries matching ``q``; caller holds the lock."""
        entries = self._entries
        if q.start is not None and q.end is not None:
            lo = bisect.bisect_left(entries, q.start, key=lambda e: e.last_modified)
            hi = bisect.bisect_right(entries, q.end, key=lambda e: e.last_modified)
            entries = entries[lo:hi]
        if q.cve_id is not None:
            entries = [e for e in entries if e.cve_id == q.cve_id]
        if q.no_rejected:
            entries = [e for e in entries if not e.rejected]
        return entries

    def _take_fault(self, params: dict[str, str]) -> AnyFault | None:
        try:
            start_index: int | None = int(params.get("startIndex", "0"))
        except ValueError:
            start_index = None
        return self._faults.take(lambda wanted: wanted is None or wanted == start_index)

    def _page(self, q: _Query) -> tuple[dict, list[str]]:
        if self._synthetic is not None:
            if q.start is None or q.end is None or q.cve_id is not None:
                raise _BadRequest("Synthetic mode serves lastModStartDate/lastModEndDate windows only")
            total = self._synthetic.total(q.start, q.end)
            items = self._synthetic.page(q.start, q.end, q.start_index, q.per_page)
        else:
            with self._lock:
                selected = self._select(q)
            total = len(selected)
            items = [e.text for e in selected[q.start_index : q.start_index + q.per_page]]
        envelope = {
            "resultsPerPage": len(items),
            "startIndex": q.start_index,
            "totalResults": total,
            "format": "NVD_CVE",
            "version": "2.0",
            "timestamp": _nvd_time(_utcnow()),
        }
        return envelope, items

    def _change_total(self, q: _Query, delta: int) -> None:
        with self._lock:
            if self._synthetic is not None:
                self._synthetic.per_day = max(0, self._synthetic.per_day + delta)
                return
            in_window = self._select(q)
            if delta < 0:
                gone = {e.cve_id for e in in_window[:-delta]}
                self._entries = [e for e in self._entries if e.cve_id not in gone]
                return
            source = in_window or self._entries
            template = json.loads(source[0].text) if source else sample_records()[0]
        modified = q.end if q.end is not None else _utcnow()
        copies = []
        for _ in range(delta):
            item = json.loads(json.dumps(template))
            item["cve"]["id"] = f"CVE-{modified.year}-{9_000_000 + next(self._new_ids)}"
            item["cve"]["lastModified"] = _nvd_time(modified)
            copies.append(_entry(item))
        self._store(copies, replace=False)

    def _handle(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with self._lock:
            self._requests.append(
                {
                    "path": url.path,
                    "params": params,
                    "headers": dict(handler.headers.items()),
                    "time": time.time(),
                }
            )
        if url.path != API_PATH:
            message = f"Unknown path {url.path}; the API is {API_PATH}"
            return _send(handler, 404, b"", headers={"message": message})

        fault = self._take_fault(params)
        if isinstance(fault, StatusFault):
            return _send_status_fault(handler, fault)
        if isinstance(fault, DelayFault):
            self._stopping.wait(fault.seconds)

        try:
            query = _parse_query(params)
            envelope, items = self._page(query)
        except _BadRequest as exc:
            return _send(handler, 404, b"", headers={"message": str(exc)})

        if isinstance(fault, TotalChangesFault):
            self._change_total(query, fault.delta)
        if isinstance(fault, MalformedFault):
            body = b"<html><head><title>Service Unavailable</title></head><body>Please retry</body></html>"
        elif isinstance(fault, WrongShapeFault):
            body = json.dumps(envelope).encode()
        else:
            body = _render(envelope, items)
            if isinstance(fault, TruncatedFault):
                body = body[: len(body) // 2]
            elif isinstance(fault, CutShortFault):
                return _send_cut_short(handler, 200, body, chunked=fault.chunked)
        _send(handler, 200, body)


def _render(envelope: dict, items: list[str]) -> bytes:
    # Items are already JSON text; splice them in instead of re-encoding megabytes.
    head = json.dumps(envelope)[:-1]
    return f'{head}, "vulnerabilities": [{", ".join(items)}]}}'.encode()


def _send_cut_short(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> None:
    """Send headers framing all of ``body``, then its first half, and close the connection."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    half = body[: len(body) // 2]
    handler.wfile.write(f"{len(body):x}\r\n".encode() + half if chunked else half)
    # No "Connection: close" header: the server just hangs up, as a dropped connection does.
    handler.close_connection = True


def _send_status_fault(handler: _Handler, fault: StatusFault) -> None:
    headers = {}
    if fault.retry_after is not None:
        value = fault.retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # HTTP's delay-seconds is an integer; send 1.5 as given, though
        headers["Retry-After"] = str(value)
    if isinstance(fault.body, str):
        body, content_type = fault.body.encode(), "text/plain; charset=utf-8"
    else:
        phrase = handler.responses.get(fault.code, ("",))[0]
        default = {"message": f"{fault.code} {phrase} (injected by NvdStandIn)".replace("  ", " ")}
        body, content_type = json.dumps(fault.body or default).encode(), "application/json"
    _send(handler, fault.code, body, content_type, headers)
