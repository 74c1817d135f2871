"""Serving a stand-in on loopback in a daemon thread: start, stop, context manager, port.

A stand-in sets `host`, `_requested_port`, `_stopping` (a `threading.Event` that wakes its delay
faults), `_server = _thread = None` in `__init__`, and builds its server in `_make_server()`;
the server must offer `drop_connections()` so that `stop()` leaves no keep-alive socket open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any


class ServedInThread:
    _thread_name = "standin"

    def _make_server(self):
        raise NotImplementedError

    def start(self):
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._stopping.clear()
        self._server = self._make_server()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name=f"{self._thread_name}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and join every thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes delay faults
        server.shutdown()
        server.drop_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._server.server_address[1]


class FaultQueue:
    """Faults waiting for the requests they are meant for, each firing `times` times (thread-safe)."""

    def __init__(self) -> None:
        self._queued: list[list] = []  # [fault, remaining, what it is for]
        self._lock = threading.Lock()

    def put(self, fault: Any, times: int, meant_for: Any = None) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queued.append([fault, times, meant_for])

    def take(self, matches: Callable[[Any], bool]) -> Any:
        """The first queued fault whose `meant_for` matches this request, counted down; None if none."""
        with self._lock:
            for queued in self._queued:
                fault, remaining, meant_for = queued
                if matches(meant_for):
                    if remaining == 1:
                        self._queued.remove(queued)
                    else:
                        queued[1] = remaining - 1
                    return fault
        return None


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    """A whole answer: status, type, length, extra headers, body."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
