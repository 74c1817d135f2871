"""Alerting: failed checks and failed runs are POSTed to the webhook as Slack-compatible JSON
(the router's state changes, retries and both instance kinds: test_alerting.py)."""

from __future__ import annotations

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    asset,
    asset_check,
    build_sensor_context,
    materialize,
)

from etl_platform.defs.ops.sensors import alert_router
from etl_platform.lib.alerts import send_alert


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

    alert_router(context)
    alert_router(build_sensor_context(instance=instance, cursor=context.cursor))

    assert len(webhook.bodies) == 1
    assert "numbers_sum_to_ten on numbers failed" in webhook.bodies[0]["text"]
    assert "sum=6" in webhook.bodies[0]["text"]


def test_a_failed_run_is_alerted_with_its_step(webhook):
    instance = DagsterInstance.ephemeral()
    materialize([broken], instance=instance, raise_on_error=False)

    alert_router(build_sensor_context(instance=instance))

    assert len(webhook.bodies) == 1
    assert "failed in broken" in webhook.bodies[0]["text"]
