"""Fixtures of the ops tests: a loopback webhook the alerts are POSTed to."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

UI = "http://dagster.example:3000"


class Webhook:
    """A loopback HTTP server recording the JSON bodies POSTed to it; answers 500 `failures` times first."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.refused = 0
        self.failures = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if owner.failures > 0:
                    owner.failures -= 1
                    owner.refused += 1
                    self.send_response(500)
                else:
                    owner.bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch) -> Iterator[Webhook]:
    hook = Webhook()
    monkeypatch.setenv("ETL_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("ETL_UI_BASE_URL", UI + "/")
    yield hook
    hook.close()
