"""Loopback stand-in for the Platzi Fake Store API (``https://api.escuelajs.co/api/v1``).

Serves the products and categories recorded on 2025-10-17 (see
``etl_platform/samples/fake_store/SOURCES.md``) and implements the documented
JWT auth flow (``/users/``, ``/users/is-available``, ``/auth/login``,
``/auth/refresh-token``, ``/auth/profile``) over real HTTP.

Stand-in choices (not recorded behaviour of the real API):

* product and category reads require ``Authorization: Bearer <access_token>``
  (the real API serves them anonymously; the original system's client
  assumed they were protected, and this lets tests exercise token expiry);
  pass ``require_auth=False`` to serve them openly, as the real API does;
* a user ``john@mail.com`` / ``changeme`` (the docs' example) exists at start;
* tokens are HS256 JWTs with payload ``{"sub", "iat", "exp"}`` signed with a
  per-server secret; access and refresh tokens use different secrets, so one
  is never accepted as the other. :meth:`FakeStoreStandIn.expire_access_tokens`
  and :meth:`FakeStoreStandIn.revoke_refresh_tokens` rotate those secrets, and
  :meth:`FakeStoreStandIn.pass_time` runs their ``exp`` out without waiting;
* error bodies follow NestJS: ``{"message", "statusCode"[, "error"]}``.

Faults are those of :mod:`etl_platform.devservers.nvd` (status, delay,
malformed, truncated, cut short), queued with :meth:`FakeStoreStandIn.inject`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from etl_platform.devservers import nvd as _nvd
from etl_platform.devservers.serving import FaultQueue, ServedInThread, send
from etl_platform.devservers.nvd import CutShortFault, DelayFault, Fault, MalformedFault, StatusFault, TruncatedFault

__all__ = ["FakeStoreStandIn", "Fault", "sample_products", "sample_categories"]

API_PREFIX = "/api/v1"
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "fake_store"
PRODUCTS_FILE = "products_2025-10-17.json"
CATEGORIES_FILE = "categories_2025-10-17.json"
ACCESS_TTL = 20 * 24 * 3600  # the real API: access token 20 days
REFRESH_TTL = 10 * 3600  # refresh token 10 hours
DEFAULT_USERS = [
    {
        "id": 1,
        "email": "john@mail.com",
        "password": "changeme",
        "name": "Jhon",
        "role": "customer",
        "avatar": "https://i.imgur.com/LDOO4Qs.jpg",
    }
]
JSON_TYPE = "application/json; charset=utf-8"
SUPPORTED_FAULTS = (StatusFault, DelayFault, MalformedFault, TruncatedFault, CutShortFault)
AnyFault = StatusFault | DelayFault | MalformedFault | TruncatedFault | CutShortFault


def sample_products() -> list[dict]:
    """The 108 products of ``GET /api/v1/products`` recorded on 2025-10-17."""
    return json.loads((SAMPLES_DIR / PRODUCTS_FILE).read_text(encoding="utf-8"))


def sample_categories() -> list[dict]:
    """The 151 categories of ``GET /api/v1/categories`` recorded on 2025-10-17."""
    return json.loads((SAMPLES_DIR / CATEGORIES_FILE).read_text(encoding="utf-8"))


def _dumps(value: Any) -> bytes:
    # The real API's style: compact JSON, non-ASCII as is (reproduces the recordings byte for byte).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _iso_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


def _redact(value: Any) -> Any:
    """Copy of a JSON body with every ``password`` value masked."""
    if isinstance(value, dict):
        return {k: ("***" if k.lower() == "password" else _redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


# --------------------------------------------------------------------------- JWT


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode(payload: dict, secret: bytes) -> str:
    """HS256 JWT (``header.payload.signature``, base64url without padding)."""
    header = _b64url(_dumps({"alg": "HS256", "typ": "JWT"}))
    body = _b64url(_dumps(payload))
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64url(signature)}"


def jwt_decode(token: str, secret: bytes, now: float | None = None) -> dict | None:
    """The payload of a valid, unexpired HS256 token signed with ``secret``; None otherwise."""
    try:
        header, body, signature = token.split(".")
        expected = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64url_decode(signature)):
            return None
        if json.loads(_b64url_decode(header)).get("alg") != "HS256":
            return None
        payload = json.loads(_b64url_decode(body))
        if not isinstance(payload, dict) or (now if now is not None else time.time()) >= payload["exp"]:
            return None
        return payload
    except (ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- HTTP plumbing (shared with ecb.py)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def do_GET(self) -> None:
        self.server.standin._dispatch(self, "GET")

    def do_POST(self) -> None:
        self.server.standin._dispatch(self, "POST")

    def do_PUT(self) -> None:
        self.server.standin._dispatch(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.standin._dispatch(self, "DELETE")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(_nvd._Server):
    """NVD's server (connection tracking for a clean ``stop()``) with a handler taking all methods."""

    def __init__(self, address: tuple[str, int], standin: Any):
        super().__init__(address, standin)
        self.RequestHandlerClass = _Handler


class _LoopbackStandIn(ServedInThread):
    """Lifecycle, request log and fault queue common to the commerce stand-ins.

    Subclasses implement ``_handle(handler, method, path, params, body) -> None``
    and set ``_name`` and ``_base_path``.
    """

    _name = "standin"
    _thread_name = "commerce-standin"
    _base_path = ""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self._requested_port = port
        self._lock = threading.RLock()  # guards data, faults and the request log
        self._faults = FaultQueue()
        self._requests: list[dict] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle (ServedInThread)

    def _make_server(self) -> _Server:
        return _Server((self.host, self._requested_port), self)

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL; clients append resource paths to it."""
        return f"{self.root_url}{self._base_path}"

    # ---- faults and observations

    def inject(self, fault: AnyFault, times: int = 1, path: str | None = None) -> None:
        """Make the next ``times`` requests (whose path, relative to :attr:`url`, starts with ``path``
        when given) hit ``fault``. Accepts ``Fault.status/delay/malformed/truncated/cut_short``."""
        if not isinstance(fault, SUPPORTED_FAULTS):
            raise TypeError(f"{type(self).__name__} does not support {type(fault).__name__}")
        self._faults.put(fault, times, path)

    @property
    def requests(self) -> list[dict]:
        """Snapshot of requests received: ``{"method", "path", "params", "headers", "json", "time"}``
        dicts; ``password`` values in JSON bodies are masked as ``"***"``."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ---- internals

    def _take_fault(self, path: str) -> AnyFault | None:
        relative = path[len(self._base_path) :] if path.startswith(self._base_path) else path
        return self._faults.take(lambda prefix: prefix is None or relative.startswith(prefix))

    def _dispatch(self, handler: _Handler, method: str) -> None:
        url = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        with self._lock:
            self._requests.append(
                {
                    "method": method,
                    "path": url.path,
                    "params": params,
                    "headers": dict(handler.headers.items()),
                    "json": _redact(body),
                    "time": time.time(),
                }
            )
        fault = self._take_fault(url.path)
        if isinstance(fault, StatusFault):
            return _send_status_fault(handler, fault, type(self).__name__)
        if isinstance(fault, DelayFault):
            self._stopping.wait(fault.seconds)
        if bad_json:
            return _send_json(handler, 400, {"message": "Unexpected token in JSON", "error": "Bad Request", "statusCode": 400})
        status, content, content_type, headers = self._handle(method, url.path, params, body, handler.headers)
        if isinstance(fault, MalformedFault):
            content = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
        elif isinstance(fault, TruncatedFault):
            content = content[: len(content) // 2]
        elif isinstance(fault, CutShortFault):
            return _nvd._send_cut_short(handler, status, content, content_type, headers, chunked=fault.chunked)
        _send(handler, status, content, content_type, headers)

    def _handle(self, method, path, params, body, headers) -> tuple[int, bytes, str, dict]:
        raise NotImplementedError


def _send(handler, status: int, body: bytes, content_type: str = JSON_TYPE, headers=None) -> None:
    send(handler, status, body, content_type, headers)


def _send_json(handler, status: int, value: Any) -> None:
    _send(handler, status, _dumps(value))


def _send_status_fault(handler, fault: StatusFault, who: str) -> None:
    headers = {}
    if fault.retry_after is not None:
        value = fault.retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        headers["Retry-After"] = str(value)
    if isinstance(fault.body, str):
        body, content_type = fault.body.encode(), "text/plain; charset=utf-8"
    else:
        phrase = handler.responses.get(fault.code, ("",))[0]
        default = {"message": f"{phrase} (injected by {who})", "statusCode": fault.code}
        body, content_type = _dumps(fault.body or default), "application/json; charset=utf-8"
    _send(handler, fault.code, body, content_type, headers)


# --------------------------------------------------------------------------- the stand-in


def _json(status: int, value: Any) -> tuple[int, bytes, str, dict]:
    return status, _dumps(value), "application/json; charset=utf-8", {}


def _error(status: int, message: Any, error: str | None = None) -> tuple[int, bytes, str, dict]:
    value: dict[str, Any] = {"message": message}
    if error:
        value["error"] = error
    value["statusCode"] = status
    return _json(status, value)


_UNAUTHORIZED = (401, "Unauthorized")
class FakeStoreStandIn(_LoopbackStandIn):
    """Platzi Fake Store API stand-in served from a daemon thread on loopback.

    ``url`` is the ``.../api/v1`` base. ``products``/``categories`` default to
    the 2025-10-17 recordings; ``users`` to the docs' ``john@mail.com`` /
    ``changeme``. ``access_ttl``/``refresh_ttl`` are token lifetimes in seconds.
    """

    _name = "fake-store"
    _base_path = API_PREFIX

    def __init__(
        self,
        products: list[dict] | None = None,
        categories: list[dict] | None = None,
        users: list[dict] | None = None,
        access_ttl: float = ACCESS_TTL,
        refresh_ttl: float = REFRESH_TTL,
        require_auth: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host, port)
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.require_auth = require_auth
        self._access_secret = secrets.token_bytes(32)
        self._refresh_secret = secrets.token_bytes(32)
        self._clock_ahead = 0.0  # seconds `pass_time` moved the tokens' clock on
        self._categories = copy.deepcopy(sample_categories() if categories is None else categories)
        self._products = copy.deepcopy(sample_products() if products is None else products)
        self._users = copy.deepcopy(DEFAULT_USERS if users is None else users)

    # ---- data

    @property
    def products(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._products)

    @property
    def categories(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._categories)

    @property
    def users(self) -> list[dict]:
        """Registered users (passwords included: this is test data)."""
        with self._lock:
            return copy.deepcopy(self._users)

    def set_products(self, products: list[dict]) -> None:
        """Serve exactly ``products`` from now on (changed prices, removed products...)."""
        with self._lock:
            self._products = copy.deepcopy(products)

    def set_categories(self, categories: list[dict]) -> None:
        with self._lock:
            self._categories = copy.deepcopy(categories)

    def update_product(self, product_id: int, **fields: Any) -> dict:
        """Change fields of one served product (e.g. ``price=99``); returns the new product."""
        with self._lock:
            for product in self._products:
                if product["id"] == product_id:
                    product.update(copy.deepcopy(fields))
                    return copy.deepcopy(product)
        raise KeyError(f"no product {product_id}")

    def remove_products(self, product_ids) -> None:
        gone = set(product_ids)
        with self._lock:
            self._products = [p for p in self._products if p["id"] not in gone]

    def assign_category(self, product_ids, category_name: str) -> dict:
        """Re-categorise the served products ``product_ids`` into the category named ``category_name``.

        The category object (first with that exact name, e.g. id 4 "Shoes") is
        copied into each product's ``category``, as the API embeds it; they are
        then listed by ``/categories/{id}/products`` and ``/products?categoryId=``.
        The 2025-10-17 recording has no product in "Shoes": this is the way to get some.
        Returns the category.
        """
        wanted = set(product_ids)
        with self._lock:
            category = next((c for c in self._categories if c["name"] == category_name), None)
            if category is None:
                raise KeyError(f"no category named {category_name!r}")
            found = {p["id"] for p in self._products if p["id"] in wanted}
            if found != wanted:
                raise KeyError(f"no products {sorted(wanted - found)}")
            for product in self._products:
                if product["id"] in wanted:
                    product["category"] = copy.deepcopy(category)
            return copy.deepcopy(category)

    def add_user(self, email: str, password: str, name: str = "User", role: str = "customer", avatar: str = "https://picsum.photos/800") -> dict:
        with self._lock:
            return copy.deepcopy(self._create_user(email, password, name, avatar, role))

    # ---- tokens

    def issue_tokens(self, user_id: int) -> dict:
        """A fresh ``{"access_token", "refresh_token"}`` pair for ``user_id``, as login answers."""
        now = int(self._now())
        return {
            "access_token": jwt_encode({"sub": user_id, "iat": now, "exp": int(now + self.access_ttl)}, self._access_secret),
            "refresh_token": jwt_encode({"sub": user_id, "iat": now, "exp": int(now + self.refresh_ttl)}, self._refresh_secret),
        }

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused (401) from now on; refresh tokens still work."""
        with self._lock:
            self._access_secret = secrets.token_bytes(32)

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused (401) from now on."""
        with self._lock:
            self._refresh_secret = secrets.token_bytes(32)

    def pass_time(self, seconds: float) -> None:
        """Let `seconds` go by for the tokens' ``exp`` (no waiting): a token whose lifetime has run
        out by then is refused (401), as after a real wait."""
        with self._lock:
            self._clock_ahead += seconds

    # ---- internals

    def _now(self) -> float:
        return time.time() + self._clock_ahead

    def _create_user(self, email, password, name, avatar, role="customer") -> dict:
        now = _iso_now()
        user = {
            "id": max((u["id"] for u in self._users), default=0) + 1,
            "email": email,
            "password": password,
            "name": name,
            "role": role,
            "avatar": avatar,
            "creationAt": now,
            "updatedAt": now,
        }
        self._users.append(user)
        return user

    def _user_from_bearer(self, headers) -> dict | None:
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        with self._lock:
            payload = jwt_decode(token.strip(), self._access_secret, self._now())
            if payload is None:
                return None
            return next((u for u in self._users if u["id"] == payload.get("sub")), None)

    def _handle(self, method, path, params, body, headers):
        if not path.startswith(API_PREFIX + "/"):
            return _error(404, f"Cannot {method} {path}", "Not Found")
        route = path[len(API_PREFIX) :].rstrip("/") or "/"
        parts = route.strip("/").split("/")

        if method == "POST":
            if route == "/users/is-available":
                return self._is_available(body)
            if route == "/users":
                return self._register(body)
            if route == "/auth/login":
                return self._login(body)
            if route == "/auth/refresh-token":
                return self._refresh(body)
            return _error(404, f"Cannot POST {path}", "Not Found")
        if method != "GET":
            return _error(404, f"Cannot {method} {path}", "Not Found")

        if route == "/auth/profile":
            user = self._user_from_bearer(headers)
            return _json(200, user) if user else _error(*_UNAUTHORIZED)
        if parts[0] not in ("products", "categories") or len(parts) > 3:
            return _error(404, f"Cannot GET {path}", "Not Found")
        if self.require_auth and self._user_from_bearer(headers) is None:
            return _error(*_UNAUTHORIZED)
        with self._lock:
            products = copy.deepcopy(self._products)
            categories = copy.deepcopy(self._categories)
        if parts == ["categories"]:
            return _json(200, categories)
        if parts == ["products"]:
            return self._product_list(products, params)
        if len(parts) >= 2 and not parts[1].isdigit():
            return _error(400, "Validation failed (numeric string is expected)", "Bad Request")
        if parts[0] == "products" and len(parts) == 2:
            found = next((p for p in products if p["id"] == int(parts[1])), None)
            if found is None:
                return _error(400, f'Could not find any entity of type "Product" matching: {{ "id": {parts[1]} }}', "Bad Request")
            return _json(200, found)
        if parts[0] == "categories" and len(parts) == 2:
            found = next((c for c in categories if c["id"] == int(parts[1])), None)
            if found is None:
                return _error(400, f'Could not find any entity of type "Category" matching: {{ "id": {parts[1]} }}', "Bad Request")
            return _json(200, found)
        if parts[0] == "categories" and parts[2] == "products":
            cid = int(parts[1])
            return self._paged([p for p in products if p["category"]["id"] == cid], params)
        return _error(404, f"Cannot GET {path}", "Not Found")

    def _product_list(self, products, params):
        if "categoryId" in params:
            try:
                cid = int(params["categoryId"])
            except ValueError:
                return _error(400, ["categoryId must be a number"], "Bad Request")
            products = [p for p in products if p["category"]["id"] == cid]
        if "title" in params:
            needle = params["title"].lower()
            products = [p for p in products if needle in p["title"].lower()]
        return self._paged(products, params)

    @staticmethod
    def _paged(products, params):
        try:
            offset = int(params.get("offset") or 0)
            limit = int(params["limit"]) if params.get("limit") else None
        except ValueError:
            return _error(400, ["offset and limit must be integers"], "Bad Request")
        if offset < 0 or (limit is not None and limit < 0):
            return _error(400, ["offset and limit must not be negative"], "Bad Request")
        end = None if limit is None else offset + limit
        return _json(200, products[offset:end])

    def _is_available(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("email"), str):
            return _error(400, ["email must be an email"], "Bad Request")
        with self._lock:
            taken = any(u["email"].lower() == body["email"].lower() for u in self._users)
        return _json(201, {"isAvailable": not taken})

    def _register(self, body):
        fields = ("name", "email", "password", "avatar")
        if not isinstance(body, dict):
            body = {}
        missing = [f"{f} should not be empty" for f in fields if not isinstance(body.get(f), str) or not body[f]]
        if missing:
            return _error(400, missing, "Bad Request")
        with self._lock:
            if any(u["email"].lower() == body["email"].lower() for u in self._users):
                return _error(400, "email already registered", "Bad Request")
            user = self._create_user(body["email"], body["password"], body["name"], body["avatar"])
            return _json(201, user)

    def _login(self, body):
        if not isinstance(body, dict):
            return _error(*_UNAUTHORIZED)
        with self._lock:
            user = next(
                (u for u in self._users if u["email"] == body.get("email") and u["password"] == body.get("password")),
                None,
            )
            if user is None:
                return _error(*_UNAUTHORIZED)
            return _json(201, self.issue_tokens(user["id"]))

    def _refresh(self, body):
        token = body.get("refreshToken") if isinstance(body, dict) else None
        if not isinstance(token, str):
            return _error(*_UNAUTHORIZED)
        with self._lock:
            payload = jwt_decode(token, self._refresh_secret, self._now())
            if payload is None or not any(u["id"] == payload.get("sub") for u in self._users):
                return _error(*_UNAUTHORIZED)
            return _json(201, self.issue_tokens(payload["sub"]))
