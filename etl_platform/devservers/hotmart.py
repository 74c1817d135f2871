"""Loopback stand-in for the Hotmart sales API (OAuth token + ``/payments/api/v1/sales/*``).

Follows the documented behaviour recorded in ``samples/hotmart_sales/SOURCES.md``:

* ``POST /security/oauth/token?grant_type=client_credentials&client_id=..&client_secret=..``
  with ``Authorization: Basic base64(id:secret)`` answers
  ``{access_token, token_type, expires_in, scope, jti}``; bad credentials give 401;
* ``GET /payments/api/v1/sales/history`` (and ``sales/users``, ``sales/commissions``,
  ``sales/price/details``, ``sales/summary``) need ``Authorization: Bearer <token>``;
  an unknown or expired token gives 401 with the recorded error body;
* cursor paging: ``max_results`` + opaque ``page_token`` (base64 JSON like Hotmart's);
  ``page_info.next_page_token`` is left out on the last page (or ``null`` with
  ``null_next_token=True``);
* ``endpoints`` limits the endpoints served (an account or API without the others):
  the rest answer 404;
* the other endpoints serve their recorded examples; with ``start_date``, ``end_date`` or
  ``transaction_status`` they answer about the sales/history items those filters select
  (a recorded example per sale, under its transaction and product);
* ``start_date`` / ``end_date`` (epoch ms, both inclusive) filter on
  ``purchase.order_date`` (``date_field``); ``transaction`` and
  ``transaction_status`` filter exactly; without either, only APPROVED and
  COMPLETE sales are returned, as documented (``default_statuses=None`` turns that off).

Faults are the NVD stand-in's (:class:`etl_platform.devservers.nvd.Fault`):
status, delay, malformed, truncated, cut short and wrong-shape (no ``items``)
apply to the API endpoints; injected with ``token_endpoint=True``, all but
wrong-shape apply to the token endpoint instead.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import threading
import time
import uuid
from collections.abc import Collection
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from etl_platform.devservers.nvd import (
    AnyFault,
    CutShortFault,
    DelayFault,
    Fault,
    MalformedFault,
    StatusFault,
    TotalChangesFault,
    TruncatedFault,
    WrongShapeFault,
    _Handler,
    _send,
    _send_cut_short,
    _send_status_fault,
    _Server,
)
from etl_platform.devservers.serving import FaultQueue, ServedInThread

__all__ = ["Fault", "HotmartStandIn", "recorded_items", "SAMPLES_DIR"]

API_PATH = "/payments/api/v1"
TOKEN_PATH = "/security/oauth/token"
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "hotmart_sales"
LIVE_FILE = "hotmart-mcp__test-results_live_capture__PII_REDACTED.json"
DOCUMENTED_DEFAULT_STATUSES = frozenset({"APPROVED", "COMPLETE"})
DEFAULT_MAX_RESULTS = 10
DAY_MS = 86_400_000
# With any of these, the other sales endpoints answer about the stored sales/history items
# the same filters select (one recorded example each, cycled, under the sale's transaction).
WINDOW_PARAMS = frozenset({"start_date", "end_date", "transaction_status"})

# endpoint (under API_PATH) -> (docs example file, tool name in the live capture)
ENDPOINTS = {
    "sales/history": ("docs_example__sales_history.json", "get_sales_history"),
    "sales/users": ("docs_example__sales_users.json", "get_sales_participants"),
    "sales/commissions": ("docs_example__sales_commissions.json", "get_sales_commissions"),
    "sales/price/details": ("docs_example__sales_price_details.json", "get_sales_price_details"),
    "sales/summary": ("docs_example__sales_summary.json", "get_sales_summary"),
}


def _load(name: str) -> dict:
    return json.loads((SAMPLES_DIR / name).read_text(encoding="utf-8"))


def recorded_items(endpoint: str = "sales/history") -> list[dict]:
    """The recorded items of ``endpoint``: the documentation example's, then the live one."""
    docs_file, tool = ENDPOINTS[endpoint]
    items = list(_load(docs_file)["items"])
    for result in _load(LIVE_FILE)["results"]:
        if result["tool"] == tool and result.get("sample"):
            items.append(result["sample"])
    return items


def _purchase(item: dict) -> dict:
    """An item's ``purchase`` object; empty when an unvalidated item has none."""
    purchase = item.get("purchase") if isinstance(item, dict) else None
    return purchase if isinstance(purchase, dict) else {}


def _transaction(item: dict) -> str | None:
    """The transaction code of an item of any sales endpoint."""
    if isinstance(item.get("purchase"), dict):
        return item["purchase"].get("transaction")
    return item.get("transaction")


class _BadRequest(Exception):
    pass


def _encode_token(page: int, rows: int) -> str:
    return base64.b64encode(json.dumps({"page": page, "rows": rows}, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        page = json.loads(base64.b64decode(token, validate=True))["page"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _BadRequest(f"invalid page_token {token!r}") from None
    if not isinstance(page, int) or page < 1:
        raise _BadRequest(f"invalid page_token {token!r}")
    return page


def _int_param(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        return int(params[name])
    except ValueError:
        raise _BadRequest(f"{name} must be an integer, got {params[name]!r}") from None


class _HotmartHandler(_Handler):
    def do_POST(self) -> None:
        self.server.standin._handle(self)


class HotmartStandIn(ServedInThread):
    """Hotmart sales API stand-in served from a daemon thread on loopback.

    ``items`` (sales/history items) default to the recorded ones; the other
    sales endpoints serve their recorded examples. ``token_ttl`` is the
    ``expires_in`` (seconds) of issued tokens. ``endpoints`` are the endpoints
    served (default: all of ``ENDPOINTS``).
    """

    _thread_name = "hotmart-standin"

    def __init__(
        self,
        items: list[dict] | None = None,
        *,
        client_id: str = "standin-client",
        client_secret: str = "standin-secret",
        token_ttl: float = 172799,
        null_next_token: bool = False,
        default_statuses: Collection[str] | None = DOCUMENTED_DEFAULT_STATUSES,
        date_field: str = "order_date",
        endpoints: Collection[str] = tuple(ENDPOINTS),
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.host = host
        self._requested_port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.null_next_token = null_next_token
        self.default_statuses = None if default_statuses is None else frozenset(default_statuses)
        self.date_field = date_field
        unknown = set(endpoints) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoint(s) {sorted(unknown)}; known: {sorted(ENDPOINTS)}")
        self.endpoints = frozenset(endpoints)
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # access token -> expiry (on the clock of `_now`)
        self._clock_ahead = 0.0  # seconds `pass_time` moved the tokens' clock on
        self._faults = FaultQueue()
        self._requests: list[dict] = []
        self._other = {name: recorded_items(name) for name in ENDPOINTS if name != "sales/history"}
        self._items: list[dict] = []
        self._unauthorized = _load("docs_example__error_unauthorized.json")
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set_items(recorded_items() if items is None else items)

    # ---- lifecycle (ServedInThread)

    def _make_server(self) -> _Server:
        server = _Server((self.host, self._requested_port), self)  # type: ignore[arg-type]
        server.RequestHandlerClass = _HotmartHandler  # adds POST for the token endpoint
        return server

    @property
    def url(self) -> str:
        """Root of the server (``http://host:port``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """API base up to ``/payments/api/v1`` (``SALES_API_URL``)."""
        return f"{self.url}{API_PATH}"

    @property
    def auth_url(self) -> str:
        """Full token URL (``SALES_AUTH_URL``)."""
        return f"{self.url}{TOKEN_PATH}"

    # ---- data

    def set_items(self, items: list[dict], validate: bool = True) -> None:
        """Serve exactly these sales/history items (deep copies), sorted by date then transaction.

        Each needs ``purchase.transaction``, unless ``validate=False``: then they are served as
        they are, as a source that drifts sends them (without a transaction code, say).
        """
        stored = [copy.deepcopy(item) for item in items]
        if validate:
            for item in stored:
                if not isinstance(item.get("purchase"), dict) or not item["purchase"].get("transaction"):
                    raise ValueError("a sales/history item needs purchase.transaction")
        with self._lock:
            self._items = sorted(stored, key=lambda i: (self._date(i) or 0, str(_purchase(i).get("transaction") or "")))

    @property
    def items(self) -> list[dict]:
        """The stored sales/history items, in serving order (copies)."""
        with self._lock:
            return copy.deepcopy(self._items)

    def generate_items(
        self,
        n: int,
        seed: int = 0,
        start_ms: int | None = None,
        end_ms: int | None = None,
        statuses: Collection[str] = ("APPROVED", "COMPLETE"),
    ) -> list[dict]:
        """Serve ``n`` mutated copies of the recorded items and return them.

        Each has a unique ``purchase.transaction`` (``HP9`` + 13 digits), an
        ``order_date`` spread evenly over ``[start_ms, end_ms)`` (default: the
        last 30 days), ``approved_date`` shortly after, a varied price and a
        status drawn from ``statuses``. The same arguments give the same items.
        """
        rng = random.Random(seed)
        end = int(time.time() * 1000) if end_ms is None else end_ms
        start = end - 30 * DAY_MS if start_ms is None else start_ms
        if end <= start:
            raise ValueError("end_ms must be after start_ms")
        templates = recorded_items()
        statuses = tuple(statuses)
        items = []
        for i in range(n):
            item = copy.deepcopy(templates[i % len(templates)])
            purchase = item["purchase"]
            order = start + (end - start) * i // max(n, 1)
            purchase["transaction"] = f"HP9{seed % 1000:03d}{i:010d}"
            purchase["order_date"] = order
            purchase["approved_date"] = order + rng.randrange(0, 120_000)
            purchase["warranty_expire_date"] = purchase["approved_date"] + 7 * DAY_MS
            purchase["status"] = rng.choice(statuses)
            price = purchase.get("price", {})
            if isinstance(price.get("value"), int):  # keep the live record's integer prices integers
                price["value"] = rng.randrange(10, 2000)
            else:
                price["value"] = round(rng.uniform(10, 2000), 2)
            items.append(item)
        self.set_items(items)
        return copy.deepcopy(items)

    def update_status(self, transaction: str, status: str) -> None:
        """Change a stored sale's ``purchase.status`` (e.g. to ``"REFUNDED"``)."""
        with self._lock:
            for item in self._items:
                if _purchase(item).get("transaction") == transaction:
                    item["purchase"]["status"] = status
                    return
        raise KeyError(f"no sale with transaction {transaction!r}")

    # ---- tokens, faults, observations

    def issue_token(self) -> str:
        """A valid access token without going through HTTP (for tests)."""
        token = uuid.uuid4().hex
        with self._lock:
            self._tokens[token] = self._now() + self.token_ttl
        return token

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid (the next API call gets 401)."""
        with self._lock:
            self._tokens.clear()

    def pass_time(self, seconds: float) -> None:
        """Let `seconds` go by for the tokens' lifetimes (no waiting): a token whose ``expires_in``
        has run out by then gets 401, as after a real wait."""
        with self._lock:
            self._clock_ahead += seconds

    def _now(self) -> float:
        return time.monotonic() + self._clock_ahead

    def inject(self, fault: AnyFault, times: int = 1, token_endpoint: bool = False) -> None:
        """Make the next ``times`` API requests (token requests, with ``token_endpoint``) hit ``fault``."""
        if isinstance(fault, TotalChangesFault):
            raise ValueError("HotmartStandIn does not support total_changes faults")
        if token_endpoint and isinstance(fault, WrongShapeFault):
            raise ValueError("the token answer has no items to leave out")
        self._faults.put(fault, times, token_endpoint)

    @property
    def requests(self) -> list[dict]:
        """Snapshot of requests received: ``{"method", "path", "params", "headers", "time"}`` dicts."""
        with self._lock:
            return list(self._requests)

    # ---- internals

    def _date(self, item: dict) -> int | None:
        value = _purchase(item).get(self.date_field)
        return value if isinstance(value, int) else None

    def _take_fault(self, token_endpoint: bool) -> AnyFault | None:
        return self._faults.take(lambda for_token: for_token == token_endpoint)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)  # drain a form body; parameters travel in the query
        with self._lock:
            self._requests.append(
                {
                    "method": handler.command,
                    "path": url.path,
                    "params": params,
                    "headers": dict(handler.headers.items()),
                    "time": time.time(),
                }
            )
        if url.path == TOKEN_PATH:
            if handler.command != "POST":
                return _send_json(handler, 405, {"error": "method_not_allowed"})
            return self._token(handler, params)
        endpoint = url.path[len(API_PATH) + 1 :] if url.path.startswith(API_PATH + "/") else None
        if endpoint not in self.endpoints or handler.command != "GET":
            return _send_json(handler, 404, {"error": "not_found", "error_description": f"no route {url.path}"})
        if not self._authorized(handler.headers.get("Authorization", "")):
            return _send_json(handler, 401, self._unauthorized)

        fault = self._take_fault(token_endpoint=False)
        if isinstance(fault, StatusFault):
            return _send_status_fault(handler, fault)  # type: ignore[arg-type]
        if isinstance(fault, DelayFault):
            self._stopping.wait(fault.seconds)
        try:
            body = self._page(endpoint, params)
        except _BadRequest as exc:
            return _send_json(handler, 400, {"error": "bad_request", "error_description": str(exc)})
        if isinstance(fault, WrongShapeFault):
            body.pop("items")
        _send_json(handler, 200, body, fault)

    def _token(self, handler: BaseHTTPRequestHandler, params: dict[str, str]) -> None:
        fault = self._take_fault(token_endpoint=True)
        if isinstance(fault, StatusFault):
            return _send_status_fault(handler, fault)  # type: ignore[arg-type]
        if isinstance(fault, DelayFault):
            self._stopping.wait(fault.seconds)
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        ok = (
            params.get("grant_type") == "client_credentials"
            and params.get("client_id") == self.client_id
            and params.get("client_secret") == self.client_secret
            and handler.headers.get("Authorization", "") == f"Basic {expected}"
        )
        if not ok:
            return _send_json(handler, 401, self._unauthorized, fault)
        token = self.issue_token()
        _send_json(
            handler,
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "scope": "read write",
                "jti": str(uuid.uuid4()),
            },
            fault,
        )

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token.strip())
            return expiry is not None and self._now() < expiry

    def _page(self, endpoint: str, params: dict[str, str]) -> dict:
        per_page = _int_param(params, "max_results") or DEFAULT_MAX_RESULTS
        if per_page < 1:
            raise _BadRequest("max_results must be positive")
        page = _decode_token(params["page_token"]) if params.get("page_token") else 1
        selected = self._select(endpoint, params)
        first = (page - 1) * per_page
        items = selected[first : first + per_page]
        page_info: dict = {"total_results": len(selected)}
        if first + per_page < len(selected):
            page_info["next_page_token"] = _encode_token(page + 1, per_page)
        elif self.null_next_token:
            page_info["next_page_token"] = None
        if page > 1:
            page_info["prev_page_token"] = _encode_token(page - 1, per_page)
        page_info["results_per_page"] = per_page
        return {"items": items, "page_info": page_info}

    def _select(self, endpoint: str, params: dict[str, str]) -> list[dict]:
        start, end = _int_param(params, "start_date"), _int_param(params, "end_date")
        transaction, status = params.get("transaction"), params.get("transaction_status")
        with self._lock:
            if endpoint != "sales/history" and not (set(params) & WINDOW_PARAMS):
                items = copy.deepcopy(self._other[endpoint])
                if transaction:
                    items = [i for i in items if _transaction(i) == transaction]
                return items
            selected = []
            for item in self._items:
                purchase = _purchase(item)
                moment = self._date(item)
                if start is not None and (moment is None or moment < start):
                    continue
                if end is not None and (moment is None or moment > end):
                    continue
                if transaction and purchase.get("transaction") != transaction:
                    continue
                if status:
                    if purchase.get("status") != status:
                        continue
                elif not transaction and self.default_statuses is not None:
                    if purchase.get("status") not in self.default_statuses:
                        continue
                selected.append(copy.deepcopy(item))
            if endpoint != "sales/history":
                return [self._about(endpoint, index, sale) for index, sale in enumerate(selected)]
            return selected

    def _about(self, endpoint: str, index: int, sale: dict) -> dict:
        """A recorded ``endpoint`` item (cycled) made to describe ``sale``: its transaction and product."""
        templates = self._other[endpoint]
        item = copy.deepcopy(templates[index % len(templates)])
        item["transaction"] = _purchase(sale).get("transaction")
        if "product" in item and isinstance(sale.get("product"), dict):
            item["product"] = copy.deepcopy(sale["product"])
        return item


def _send_json(handler: BaseHTTPRequestHandler, status: int, body: dict, fault: AnyFault | None = None) -> None:
    """Send ``body`` as JSON, spoilt as a malformed, truncated or cut-short ``fault`` says."""
    if isinstance(fault, MalformedFault):
        return _send(handler, 200, b"<html><body>Service Unavailable</body></html>")  # type: ignore[arg-type]
    data = json.dumps(body, ensure_ascii=False).encode()
    if isinstance(fault, TruncatedFault):
        data = data[: len(data) // 2]
    elif isinstance(fault, CutShortFault):
        return _send_cut_short(handler, status, data, chunked=fault.chunked)
    _send(handler, status, data)  # type: ignore[arg-type]
