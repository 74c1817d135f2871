"""Alerting: failed checks and failed runs are POSTed to the webhook as Slack-compatible JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    asset,
    asset_check,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from etl_platform.defs.ops.sensors import alert_on_failed_check, alert_on_run_failure
from etl_platform.lib.alerts import send_alert


class Webhook:
    """A loopback HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                owner.bodies.append(json.loads(self.rfile.read(length)))
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
    yield hook
    hook.close()


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset_check(asset=numbers)
def numbers_sum_to_ten(numbers: list[int]) -> AssetCheckResult:
    total = sum(numbers)
    return AssetCheckResult(passed=total == 10, severity=AssetCheckSeverity.ERROR, metadata={"sum": total})


@asset
def broken() -> None:
    raise RuntimeError("the source is down")


def test_an_alert_is_posted_as_slack_compatible_json(webhook):
    assert send_alert("hello")

    assert webhook.bodies == [{"text": "hello"}]


def test_without_a_webhook_an_alert_is_only_logged(monkeypatch, caplog):
    monkeypatch.delenv("ETL_ALERT_WEBHOOK_URL", raising=False)

    assert not send_alert("nobody listens")
    assert "nobody listens" in caplog.text


def test_a_failed_check_is_alerted_once(webhook):
    instance = DagsterInstance.ephemeral()
    materialize([numbers, numbers_sum_to_ten], instance=instance)
    context = build_sensor_context(instance=instance)

    alert_on_failed_check(context)
    alert_on_failed_check(build_sensor_context(instance=instance, cursor=context.cursor))

    assert len(webhook.bodies) == 1
    assert "numbers_sum_to_ten on numbers failed" in webhook.bodies[0]["text"]
    assert "sum=6" in webhook.bodies[0]["text"]


def test_a_failed_run_is_alerted_with_its_step(webhook):
    instance = DagsterInstance.ephemeral()
    result = materialize([broken], instance=instance, raise_on_error=False)
    failure = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_FAILURE)[0].dagster_event
    context = build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()

    alert_on_run_failure(context)

    assert len(webhook.bodies) == 1
    assert "failed in broken" in webhook.bodies[0]["text"]
