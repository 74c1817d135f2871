"""The production instance profile (deploy/dagster.yaml) as Dagster reads it, and the sales run queue."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import yaml
from dagster import DagsterInstance, DagsterRunStatus, build_sensor_context, instance_for_test
from dagster._core.storage.dagster_run import DagsterRun
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from etl_platform.definitions import build_resources, defs
from etl_platform.defs.sales.schedules import CONCURRENCY_GROUP, CONCURRENCY_TAG, JOB_NAME, queue_serialises_sales
from etl_platform.defs.sales.sensors import sales_sensor

PROFILE = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"


def test_the_profile_puts_storage_in_postgres_and_compute_logs_in_s3(dagster_pg_url, s3_bucket, tmp_path, monkeypatch):
    shutil.copy(PROFILE, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", s3_bucket)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_PREFIX", "logs")

    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        logs = instance.compute_log_manager
        assert isinstance(logs, S3ComputeLogManager)
        assert logs._s3_bucket == s3_bucket  # noqa: SLF001 - the bucket the variable names
        assert logs._s3_session.meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"]  # noqa: SLF001
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_monitoring_enabled
        assert queue_serialises_sales(instance)
        # Every stored event is announced with NOTIFY: the statement psycopg 3 fails on.
        run = instance.add_run(DagsterRun(job_name="probe", run_id=str(uuid.uuid4())))
        instance.report_engine_event("probe", run)
        assert len(instance.all_logs(run.run_id)) == 1


def test_the_sales_job_carries_the_tag_the_queue_limits():
    assert defs.resolve_job_def(JOB_NAME).tags[CONCURRENCY_TAG] == CONCURRENCY_GROUP
    limits = yaml.safe_load(PROFILE.read_text())["run_queue"]["tag_concurrency_limits"]
    assert {"key": CONCURRENCY_TAG, "value": CONCURRENCY_GROUP, "limit": 1} in limits


def test_with_the_queue_limit_the_sensor_leaves_waiting_to_the_queue(sales_env):
    overrides = {
        "run_queue": {"tag_concurrency_limits": [{"key": CONCURRENCY_TAG, "value": CONCURRENCY_GROUP, "limit": 1}]}
    }
    with instance_for_test(overrides=overrides) as instance:
        instance.add_run(DagsterRun(job_name=JOB_NAME, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED))
        context = build_sensor_context(instance=instance, resources={"hotmart": build_resources()["hotmart"]})
        assert len(sales_sensor(context).run_requests) == 1
