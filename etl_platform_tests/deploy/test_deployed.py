"""The platform as deployed: dagster-webserver and dagster-daemon on the production profile.

deploy/dagster.yaml unchanged, in a private DAGSTER_HOME: Dagster's storage in a fresh Postgres
database, compute logs in a bucket of the loopback S3 server, the run queue in the daemon. Runs go
in through the GraphQL API as the UI sends them; results are read back from the instance.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import boto3
import pytest
import requests
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData, TickStatus
from dagster_graphql import DagsterGraphQLClient

from etl_platform.defs.sales.schedules import CONCURRENCY_GROUP, CONCURRENCY_TAG, JOB_NAME as SALES_JOB
from etl_platform_tests.commerce.conftest import FRIDAY
from etl_platform_tests.conftest import _free_port
from etl_platform_tests.cve.conftest import SAMPLE_DAY
from etl_platform_tests.hr.conftest import FILES as HR_FILES
from etl_platform_tests.hr.conftest import JOB as HR_JOB
from etl_platform_tests.hr.conftest import SAMPLES as HR_SAMPLES

pytestmark = pytest.mark.deployed

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION, REPOSITORY = "etl_platform", "__repository__"
LOG_PREFIX = "compute-logs"
# Generous: two cold Python processes, their code servers and five run processes on 2 loaded cores.
DEADLINE_SECONDS = 240

SCHEDULE_QUERY = """
query ($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { id status } }
    ... on PythonError { message }
  }
}
"""
STOP_SCHEDULE = """
mutation ($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
  }
}
"""
START_SCHEDULE = """
mutation ($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
  }
}
"""


def wait_for(condition: Callable[[], object], what: str, deadline: float, logs: list[Path]):
    """Poll `condition` until it returns something truthy; fail with the processes' log tails."""
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


@contextmanager
def started(args: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A process in a session of its own, so that its code server goes down with it."""
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def deployed_env(
    tmp_path, dagster_pg_url, postgres_url, s3_bucket, nvd, store, ecb, sales_env, monkeypatch
) -> dict[str, str]:
    """The environment of both processes (and of this test's instance): the production profile,
    every domain's source a stand-in on loopback."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    variables = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_pg_url,
        "DAGSTER_COMPUTE_LOG_BUCKET": s3_bucket,
        "DAGSTER_COMPUTE_LOG_PREFIX": LOG_PREFIX,
        "ETL_WAREHOUSE_URL": postgres_url,
        "NVD_API_URL": nvd.url,
        "STORE_API_URL": store.url,
        "ECB_API_URL": f"{ecb.root_url}/service/data",
        "ECB_HISTORY_URL": ecb.history_url,
        "HR_LANDING_URL": str(tmp_path / "landing" / "hr"),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


def test_webserver_and_daemon_run_the_platform_on_postgres_and_s3(deployed_env, s3_bucket, tmp_path):
    deadline = time.monotonic() + DEADLINE_SECONDS
    env = deployed_env
    logs = [tmp_path / "webserver.log", tmp_path / "daemon.log"]
    port = _free_port()
    graphql = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)

    # Dagster's tables are created once, before two processes could race to create them.
    migrate = subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    with ExitStack() as stack:
        instance = stack.enter_context(DagsterInstance.get())
        stack.enter_context(started(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            logs[0], env,
        ))
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/server_info"), "the webserver", deadline, logs)
        wait_for(lambda: _location_loaded(graphql), "the code location", deadline, logs)

        # Switch the sales schedule on as if that had happened 8 minutes ago: its */7 cron has
        # passed since, so the daemon's first pass makes a tick instead of waiting up to 7 minutes.
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "scheduleName": "sales_schedule"}
        state_id = graphql._execute(SCHEDULE_QUERY, {"selector": selector})["scheduleOrError"]["scheduleState"]["id"]
        assert graphql._execute(STOP_SCHEDULE, {"id": state_id})["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED"
        started_schedule = graphql._execute(START_SCHEDULE, {"selector": selector})["startSchedule"]
        assert started_schedule["scheduleState"]["status"] == "RUNNING", started_schedule
        schedule_state = _schedule_state(instance, "sales_schedule")
        instance.update_instigator_state(schedule_state.with_data(
            ScheduleInstigatorData(schedule_state.instigator_data.cron_schedule, time.time() - 8 * 60)
        ))

        cve_run = graphql.submit_job_execution(
            "cve_daily", LOCATION, REPOSITORY, tags={"dagster/partition": SAMPLE_DAY}
        )
        commerce_run = graphql.submit_job_execution(
            "commerce_daily", LOCATION, REPOSITORY, tags={"dagster/partition": FRIDAY}
        )
        sales_run = graphql.submit_job_execution(SALES_JOB, LOCATION, REPOSITORY)
        # HR has no schedule: files arriving in the landing place start its run (hr_landing_sensor).
        landing = Path(env["HR_LANDING_URL"])
        landing.mkdir(parents=True)
        for name in HR_FILES:
            shutil.copy(HR_SAMPLES / name, landing / name)
        # Nothing dequeues runs until the daemon is up.
        assert instance.get_run_by_id(cve_run).status == DagsterRunStatus.QUEUED

        stack.enter_context(started([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], logs[1], env))

        tick = wait_for(lambda: _ticks(instance, schedule_state, TickStatus.SUCCESS), "a sales_schedule tick", deadline, logs)[0]
        assert len(tick.run_ids) == 1
        sales_runs = [sales_run, *tick.run_ids]
        hr_runs = wait_for(lambda: _run_ids(instance, HR_JOB), "the hr_landing_sensor's run", deadline, logs)
        runs = [cve_run, commerce_run, *sales_runs, *hr_runs]
        wait_for(lambda: _all_done(instance, runs), "the runs to finish", deadline, logs)

        statuses = {run_id: (run.job_name, run.status) for run_id, run in _runs(instance, runs).items()}
        assert {status for _, status in statuses.values()} == {DagsterRunStatus.SUCCESS}, (statuses, _tail(logs))

        # The queue held the sales runs to one at a time (both carry the job's concurrency tag).
        records = instance.get_run_records(RunsFilter(run_ids=sales_runs))
        assert all(r.dagster_run.tags.get(CONCURRENCY_TAG) == CONCURRENCY_GROUP for r in records)
        first, second = sorted(records, key=lambda r: r.start_time)
        assert first.end_time <= second.start_time

        cve_checks, commerce_checks = _check_results(instance, cve_run), _check_results(instance, commerce_run)
        assert cve_checks[("cve/tables/cve", "reconciled_with_source")]
        assert commerce_checks and all(commerce_checks.values()), commerce_checks
        assert all(cve_checks.values()), cve_checks

        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
        keys = wait_for(
            lambda: [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"{LOG_PREFIX}/").get("Contents", [])],
            "compute logs in S3", deadline, logs,
        )
        cve_logs = [key for key in keys if cve_run in key]
        assert cve_logs, keys
        body = s3.get_object(Bucket=s3_bucket, Key=cve_logs[0])["Body"].read()
        assert body


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


def _location_loaded(graphql: DagsterGraphQLClient) -> bool:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    entries = graphql._execute(query)["workspaceOrError"]["locationEntries"]
    return any(entry["name"] == LOCATION and entry["loadStatus"] == "LOADED" for entry in entries)


def _schedule_state(instance: DagsterInstance, name: str):
    (state,) = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE) if s.name == name]
    return state


def _ticks(instance: DagsterInstance, state, status: TickStatus) -> list:
    return instance.get_ticks(state.instigator_origin_id, state.selector_id, statuses=[status])


def _run_ids(instance: DagsterInstance, job_name: str) -> list[str]:
    return [record.dagster_run.run_id for record in instance.get_run_records(RunsFilter(job_name=job_name))]


def _check_results(instance: DagsterInstance, run_id: str) -> dict[tuple[str, str], bool]:
    """(asset key, check name) -> passed, for the checks a run evaluated, as the instance stored them."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return {(e.asset_key.to_user_string(), e.check_name): e.passed for e in evaluations}


def _runs(instance: DagsterInstance, run_ids: list[str]) -> dict:
    return {record.dagster_run.run_id: record.dagster_run for record in instance.get_run_records(RunsFilter(run_ids=run_ids))}


def _all_done(instance: DagsterInstance, run_ids: list[str]) -> bool:
    return all(run.is_finished for run in _runs(instance, run_ids).values())


def _tail(logs: list[Path]) -> str:
    return "\n".join(log.read_text(errors="replace")[-2000:] for log in logs if log.exists())
