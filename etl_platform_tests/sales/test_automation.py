"""The 7-minute schedule, the sensor alternative, and the CLI run of `group:sales`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from dagster import DagsterRunStatus, RunRequest, SkipReason, build_schedule_context, build_sensor_context
from dagster._core.storage.dagster_run import DagsterRun

from etl_platform.defs.sales.fetch import CURSOR_KEY
from etl_platform.defs.sales.resources import HotmartResource
from etl_platform.defs.sales.schedules import JOB_NAME, sales_schedule
from etl_platform.defs.sales.sensors import sales_sensor
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.sales.conftest import materialization


def test_the_schedule_runs_every_7_minutes_from_the_cursor(run_sales, postgres_url):
    result = run_sales(warehouse_url=postgres_url, end="2026-05-01")
    # The context as a context manager: it closes the instance it opens from the reference.
    with build_schedule_context(instance=run_sales.instance, resources={"hotmart": HotmartResource()}) as context:
        request = sales_schedule(context)

    assert sales_schedule.cron_schedule == "*/7 * * * *"
    assert isinstance(request, RunRequest)
    assert request.tags[CURSOR_KEY] == str(materialization(result, "sales/tables/sale")[CURSOR_KEY])


def test_the_schedule_skips_without_credentials(run_sales, monkeypatch):
    monkeypatch.delenv("SALES_CLIENT_ID")
    with build_schedule_context(instance=run_sales.instance, resources={"hotmart": HotmartResource()}) as context:
        assert isinstance(sales_schedule(context), SkipReason)


def test_the_sensor_never_starts_a_second_run_while_one_is_in_flight(run_sales):
    instance = run_sales.instance
    context = build_sensor_context(instance=instance, resources={"hotmart": HotmartResource()})
    assert len(sales_sensor(context).run_requests) == 1

    instance.add_run(DagsterRun(job_name=JOB_NAME, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED))

    context = build_sensor_context(instance=instance, resources={"hotmart": HotmartResource()})
    assert not sales_sensor(context).run_requests


def test_the_cli_materializes_the_group_into_the_configured_warehouse(sales_env, postgres_url, tmp_path):
    env = {**sales_env, "ETL_WAREHOUSE_URL": postgres_url, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    os.makedirs(env["DAGSTER_HOME"])
    dagster = Path(sys.executable).parent / "dagster"

    run = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "etl_platform.definitions", "--select", "group:sales"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    with engine_for(postgres_url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM sale")).scalar_one() == 2
    flat = Path(sales_env["ETL_HOME"]) / "storage" / "sales" / "flat"
    assert {p.name for p in flat.glob("*.parquet")} == {
        "sales.parquet", "sale_users.parquet", "sale_commissions.parquet", "sale_price_details.parquet"
    }
