"""The 7-minute schedule, the sensor alternative, the CLI run of `group:sales` and the opt-in endpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from dagster import (
    AssetSelection,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.storage.dagster_run import DagsterRun

from etl_platform.definitions import build_resources, defs
from etl_platform.defs.sales.fetch import CURSOR_KEY
from etl_platform.defs.sales.keys import CORE_ASSETS
from etl_platform.defs.sales.resources import HotmartResource
from etl_platform.defs.sales.schedules import JOB_NAME, sales_schedule
from etl_platform.defs.sales.sensors import sales_sensor
from etl_platform.devservers.hotmart import HotmartStandIn
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.runs import materialization_metadata
from etl_platform_tests.sales.conftest import CLIENT_ID, CLIENT_SECRET

DAGSTER = Path(sys.executable).parent / "dagster"


def bound_hotmart() -> HotmartResource:
    """The resource as the code location binds it to the environment the test set."""
    return build_resources()["hotmart"]


def test_the_schedule_runs_every_7_minutes_from_the_cursor(run_sales, postgres_url):
    result = run_sales(warehouse_url=postgres_url, end="2026-05-01")
    # The context as a context manager: it closes the instance it opens from the reference.
    with build_schedule_context(instance=run_sales.instance, resources={"hotmart": bound_hotmart()}) as context:
        request = sales_schedule(context)

    assert sales_schedule.cron_schedule == "*/7 * * * *"
    assert isinstance(request, RunRequest)
    assert request.tags[CURSOR_KEY] == str(materialization_metadata(result, "sales/tables/sale")[CURSOR_KEY])


def test_the_schedule_skips_without_credentials(run_sales, monkeypatch):
    monkeypatch.delenv("SALES_CLIENT_ID")
    with build_schedule_context(instance=run_sales.instance, resources={"hotmart": bound_hotmart()}) as context:
        assert isinstance(sales_schedule(context), SkipReason)


def test_the_sensor_never_starts_a_second_run_while_one_is_in_flight(run_sales):
    instance = run_sales.instance
    context = build_sensor_context(instance=instance, resources={"hotmart": bound_hotmart()})
    assert len(sales_sensor(context).run_requests) == 1

    instance.add_run(DagsterRun(job_name=JOB_NAME, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED))

    context = build_sensor_context(instance=instance, resources={"hotmart": bound_hotmart()})
    assert not sales_sensor(context).run_requests


def test_the_documented_cli_command_needs_only_sales_history(sales_env, postgres_url, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    with HotmartStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, endpoints={"sales/history"}) as history_only:
        env = {
            **sales_env,
            "SALES_API_URL": history_only.api_url,
            "SALES_AUTH_URL": history_only.auth_url,
            "ETL_WAREHOUSE_URL": postgres_url,
            "DAGSTER_HOME": str(home),
        }
        run = subprocess.run(
            [str(DAGSTER), "asset", "materialize", "-m", "etl_platform.definitions", "--select", "group:sales"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
        )

    assert run.returncode == 0, run.stderr[-3000:]
    with engine_for(postgres_url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM sale")).scalar_one() == 2
    flat = Path(sales_env["ETL_HOME"]) / "storage" / "sales" / "flat"
    assert {p.name for p in flat.glob("*.parquet")} == {"sales.parquet"}


def test_the_opt_in_endpoints_are_a_group_of_their_own():
    graph = defs.get_repository_def().asset_graph

    def group(name: str) -> set[str]:
        return {key.to_user_string() for key in AssetSelection.groups(name).resolve(graph)}

    assert group("sales_extra") == {
        "sales/flat/sale_users", "sales/flat/sale_commissions", "sales/flat/sale_price_details"
    }
    assert group("sales") == {key.to_user_string() for key in CORE_ASSETS}
