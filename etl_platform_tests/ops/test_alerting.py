"""The alert router, on a SQLite and a Postgres instance: real runs, a loopback webhook, ticks evaluated
directly with the cursor carried over (a daemon restart is a new context from the stored cursor)."""

import json
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    Config,
    DagsterInstance,
    DagsterRunStatus,
    StaticPartitionsDefinition,
    asset,
    asset_check,
    build_sensor_context,
    instance_for_test,
    job,
    materialize,
    op,
)

from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteInstigatorOrigin, RemoteRepositoryOrigin
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    TickData,
    TickStatus,
)
from dagster._utils.error import SerializableErrorInfo

from etl_platform.defs.ops.sensors import alert_router
from etl_platform.lib.alerts import AlertBook

from etl_platform_tests.ops.conftest import UI


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request, tmp_path) -> Iterator[DagsterInstance]:
    """A run-sharded SQLite instance, or one on dagster-postgres storage in a fresh database."""
    overrides = None
    if request.param == "postgres":
        # dagster-postgres needs psycopg2: with psycopg 3 its NOTIFY fails (dagster issue #33958).
        url = sa.make_url(request.getfixturevalue("postgres_url")).set(drivername="postgresql+psycopg2")
        url = url.render_as_string(hide_password=False)
        overrides = {"storage": {"postgres": {"postgres_url": url}}}
    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
        yield instance


class Router:
    """Evaluates the router like the daemon does: each tick from the cursor the last one stored."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> None:
        context = build_sensor_context(instance=self.instance, cursor=self.cursor)
        alert_router(context)
        self.cursor = context.cursor

    @property
    def book(self) -> AlertBook:
        return AlertBook.from_json(self.cursor)


regions = StaticPartitionsDefinition(["north", "south"])


class StandIn(Config):
    bad_rows: int = 0
    null_ratio: float = 0.0
    fail: bool = False


@asset(partitions_def=regions)
def stand_in(config: StandIn) -> dict:
    if config.fail:
        raise RuntimeError("the source answered 503")
    return {"bad_rows": config.bad_rows, "null_ratio": config.null_ratio}


# Blocking: its failure also fails the run, which must not make a second alert.
@asset_check(asset=stand_in, partitions_def=regions, blocking=True)
def no_bad_rows(stand_in: dict) -> AssetCheckResult:
    return AssetCheckResult(
        passed=stand_in["bad_rows"] == 0,
        severity=AssetCheckSeverity.ERROR,
        description="records breaking a rule",
        metadata={"bad_rows": stand_in["bad_rows"]},
    )


@asset_check(asset=stand_in, partitions_def=regions)
def few_nulls(stand_in: dict) -> AssetCheckResult:
    return AssetCheckResult(
        passed=stand_in["null_ratio"] < 0.1, severity=AssetCheckSeverity.WARN, metadata={"null_ratio": stand_in["null_ratio"]}
    )


def load(instance: DagsterInstance, partition: str = "north", tags: dict | None = None, **config) -> str:
    result = materialize(
        [stand_in, no_bad_rows, few_nulls],
        instance=instance,
        partition_key=partition,
        run_config={"ops": {"stand_in": {"config": config}}},
        raise_on_error=False,
        tags=tags,
    )
    return result.run_id


def test_a_failing_check_alerts_once_counts_repeats_and_recovers_once(instance, webhook):
    router = Router(instance)
    run_id = load(instance, bad_rows=2)
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE

    router.tick()

    assert len(webhook.bodies) == 1
    alert = webhook.bodies[0]
    assert alert["asset"] == "stand_in"
    assert alert["partition"] == "north"
    assert alert["check"] == "no_bad_rows"
    assert "records breaking a rule" in alert["reason"] and "bad_rows=2" in alert["reason"]
    assert alert["link"] == f"{UI}/assets/stand_in?view=checks"
    assert "Check no_bad_rows on stand_in [north] failed (ERROR)" in alert["text"]
    assert alert["link"] in json.dumps(alert["blocks"])

    load(instance, bad_rows=3)
    router.tick()
    router.tick()  # the "daemon" restarted: a new context from the stored cursor

    assert len(webhook.bodies) == 1
    failing = router.book.failing["check:stand_in:no_bad_rows|north"]
    assert failing["repeats"] == 1

    load(instance, bad_rows=0)
    router.tick()
    router.tick()

    assert len(webhook.bodies) == 2
    recovery = webhook.bodies[1]
    assert "no_bad_rows on stand_in [north] passing again" in recovery["text"]
    assert "1 repeat(s)" in recovery["reason"]
    assert router.book.failing == {}


def test_a_failed_run_alerts_once_after_its_last_retry(instance, webhook):
    router = Router(instance)
    load(instance, partition="south", fail=True, tags={"dagster/will_retry": "true"})

    router.tick()

    assert webhook.bodies == []  # a retry follows: judged on the last attempt

    run_id = load(instance, partition="south", fail=True, tags={"dagster/retry_number": "1"})
    router.tick()
    router.tick()

    assert len(webhook.bodies) == 1
    alert = webhook.bodies[0]
    assert alert["asset"] == "stand_in"
    assert alert["partition"] == "south"
    assert "RuntimeError: the source answered 503" in alert["reason"]
    assert alert["link"] == f"{UI}/runs/{run_id}"
    assert f"Run {run_id[:8]} of job __ephemeral_asset_job__ failed in stand_in" in alert["text"]

    load(instance, partition="south")
    router.tick()

    assert len(webhook.bodies) == 2
    assert "Materialization of stand_in passing again" in webhook.bodies[1]["text"]


def test_a_refusing_webhook_gets_each_alert_exactly_once(instance, webhook):
    router = Router(instance)
    webhook.failures = 2
    load(instance, bad_rows=1)

    router.tick()

    assert webhook.refused == 2 and len(webhook.bodies) == 1  # retried with backoff within the tick

    webhook.failures = 10**6  # down for good: the recovery waits in the outbox
    load(instance, bad_rows=0)
    router.tick()

    assert len(webhook.bodies) == 1
    assert len(router.book.outbox) == 1

    webhook.failures = 0
    router.tick()  # the daemon restarted: the outbox came back with the cursor
    router.tick()

    assert len(webhook.bodies) == 2
    assert "passing again" in webhook.bodies[1]["text"]
    assert router.book.outbox == []


def test_warnings_go_into_one_daily_digest(instance, webhook):
    router = Router(instance)
    load(instance, null_ratio=0.5)
    load(instance, partition="south", null_ratio=0.3)
    router.tick()

    assert webhook.bodies == []

    state = json.loads(router.cursor)
    state["digest"]["day"] = "2000-01-01"  # as if the day had turned
    router.cursor = json.dumps(state)
    router.tick()
    router.tick()

    assert len(webhook.bodies) == 1
    digest = webhook.bodies[0]
    assert digest["text"].startswith("Warnings of 2000-01-01: 2 check(s)")
    assert "few_nulls on stand_in [north]" in digest["reason"]
    assert "few_nulls on stand_in [south]" in digest["reason"]


def test_a_failing_sensor_tick_alerts_once_and_recovers(instance, webhook):
    # The ticks a daemon would write for a sensor of the "etl" code location.
    origin = RemoteInstigatorOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=RegisteredCodeLocationOrigin(location_name="etl"), repository_name="__repository__"
        ),
        instigator_name="hr_landing_sensor",
    )
    instance.add_instigator_state(InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.RUNNING))

    def tick(status: TickStatus, error: SerializableErrorInfo | None = None) -> None:
        instance.create_tick(
            TickData(
                instigator_origin_id=origin.get_id(),
                instigator_name=origin.instigator_name,
                instigator_type=InstigatorType.SENSOR,
                status=status,
                timestamp=time.time(),
                selector_id=origin.get_selector().get_id(),
                error=error,
            )
        )

    router = Router(instance)
    tick(TickStatus.FAILURE, SerializableErrorInfo("landing bucket unreachable", [], "ConnectionError"))
    tick(TickStatus.FAILURE, SerializableErrorInfo("landing bucket unreachable", [], "ConnectionError"))
    router.tick()
    router.tick()

    assert len(webhook.bodies) == 1
    alert = webhook.bodies[0]
    assert alert["text"].startswith("The sensor hr_landing_sensor failed its tick")
    assert alert["reason"] == "ConnectionError: landing bucket unreachable"
    assert alert["link"] == f"{UI}/locations/__repository__@etl/sensors/hr_landing_sensor"

    tick(TickStatus.SKIPPED)
    router.tick()

    assert len(webhook.bodies) == 2
    assert "hr_landing_sensor passing again" in webhook.bodies[1]["text"]


@op
def rotate_keys() -> None:
    raise PermissionError("the vault refused")


@job
def maintenance() -> None:
    rotate_keys()


def test_a_failed_run_of_an_op_job_is_alerted_as_its_job(instance, webhook):
    router = Router(instance)
    result = maintenance.execute_in_process(instance=instance, raise_on_error=False)

    router.tick()
    router.tick()

    assert len(webhook.bodies) == 1
    alert = webhook.bodies[0]
    assert alert["text"].startswith(f"Run {result.run_id[:8]} of job maintenance failed")
    assert "PermissionError: the vault refused" in alert["reason"]
    assert alert["link"] == f"{UI}/runs/{result.run_id}"
