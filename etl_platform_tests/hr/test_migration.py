"""The HR CSV migration through its sensor: landing place -> raw copies -> warehouse tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3

from etl_platform.defs.hr.load import MAX_BATCH_ROWS, parse_csv
from etl_platform.defs.hr.schedules import migration_run_config
from etl_platform.defs.hr.sensors import FILES_TAG
from etl_platform_tests.hr.conftest import (
    FILES,
    expected_departments_above_mean,
    expected_hires_by_quarter,
    expected_rejections,
    land_samples,
    sample_bytes,
    sample_frame,
)
from etl_platform_tests.runs import dagster_cli, materialized
from etl_platform_tests.stored import count, row_dicts, table_counts

LOADED = {"departments": 12, "jobs": 183, "hired_employees": 1929}
REJECTED = 70


def test_landed_files_load_once_with_every_rejection_logged(migration, landing, any_warehouse_url):
    land_samples(landing)
    hr = migration(any_warehouse_url)

    tick = hr.tick()

    [request] = tick.run_requests
    assert request.tags[FILES_TAG] == "departments.csv,jobs.csv,hired_employees.csv"
    assert request.run_config == migration_run_config(list(FILES))
    result = hr.run(request)
    assert result.success
    assert table_counts(any_warehouse_url, LOADED) == LOADED
    rejections = row_dicts(any_warehouse_url, "SELECT table_name, payload, reason, source FROM ingest_rejections")
    assert len(rejections) == REJECTED
    assert {(r["table_name"], r["source"]) for r in rejections} == {("hired_employees", "hired_employees.csv")}
    assert sorted(r["reason"] for r in rejections) == sorted(expected_rejections().elements())
    ty_hofer = next(r for r in rejections if json.loads(r["payload"])[0] == "2")
    assert json.loads(ty_hofer["payload"]) == ["2", "Ty Hofer", "2021-05-30T05:43:46Z", "8", ""]
    assert ty_hofer["reason"] == "job_id is required"

    # Per-table figures in the materializations.
    metadata = materialized(result)
    hires = metadata["hr/tables/hired_employees"]
    assert (hires["rows_read"], hires["rows_loaded"], hires["rows_rejected"]) == (1999, 1929, 70)
    assert hires["rejections_by_reason"] == dict(expected_rejections())
    assert hires["dagster/row_count"] == 1929
    assert "Harold Vogt" in hires["preview"]
    assert [metadata[f"hr/tables/{t}"]["rows_loaded"] for t in ("departments", "jobs")] == [12, 183]
    assert metadata["hr/tables/ingest_rejections"]["rows_rejected"] == REJECTED
    assert set(metadata) >= {"hr/reports/hires_by_quarter", "hr/reports/departments_above_mean"}

    # The files are kept as landed.
    for name in FILES:
        kept = Path(metadata[f"hr/tables/{Path(name).stem}"]["raw_copy"])
        assert kept.parent == Path(os.environ["ETL_HOME"]) / "storage" / "hr" / "raw" / Path(name).stem
        assert kept.read_bytes() == sample_bytes(name)

    # Nothing changed: nothing to load again.
    again = hr.tick()
    assert again.run_requests == []
    assert "no new or changed file" in again.skip_message
    assert table_counts(any_warehouse_url, LOADED) == LOADED
    assert count(any_warehouse_url, "ingest_rejections") == REJECTED


def test_a_corrected_file_dropped_again_updates_and_completes_rows(migration, landing, postgres_url):
    land_samples(landing)
    hr = migration(postgres_url)
    first = hr.tick().run_requests[0]
    hr.run(first)

    departments = sample_bytes("departments.csv").replace(b"2,Sales", b"2,Sales and Marketing")
    hires = sample_bytes("hired_employees.csv").replace(
        b"2,Ty Hofer,2021-05-30T05:43:46Z,8,\n", b"2,Ty Hofer,2021-05-30T05:43:46Z,8,96\n"
    )
    assert departments != sample_bytes("departments.csv") and hires != sample_bytes("hired_employees.csv")
    (landing / "departments.csv").write_bytes(departments)
    (landing / "hired_employees.csv").write_bytes(hires)

    [request] = hr.tick().run_requests
    assert request.run_key != first.run_key
    assert request.run_config == migration_run_config(["departments.csv", "hired_employees.csv"])
    result = hr.run(request)

    assert result.success
    renamed = row_dicts(postgres_url, "SELECT department FROM departments WHERE id = 2")
    assert renamed == [{"department": "Sales and Marketing"}]
    assert row_dicts(postgres_url, "SELECT job_id FROM hired_employees WHERE id = 2") == [{"job_id": 96}]
    assert table_counts(postgres_url, LOADED) == {**LOADED, "hired_employees": 1930}
    metadata = materialized(result)
    assert "hr/tables/jobs" not in metadata
    assert (metadata["hr/tables/departments"]["updated"], metadata["hr/tables/departments"]["inserted"]) == (1, 0)
    hired = metadata["hr/tables/hired_employees"]
    assert (hired["inserted"], hired["updated"], hired["rows_rejected"]) == (1, 0, REJECTED - 1)
    # This attempt's rejections are logged beside the first one's.
    assert count(postgres_url, "ingest_rejections") == 2 * REJECTED - 1
    # The reports followed.
    assert count(postgres_url, "report_hires_by_quarter", "WHERE department = 'Sales and Marketing'") > 0
    assert count(postgres_url, "report_hires_by_quarter", "WHERE department = 'Sales'") == 0
    assert hr.tick().run_requests == []


def test_the_landing_place_on_s3(migration, s3_bucket, monkeypatch, postgres_url):
    monkeypatch.setenv("HR_LANDING_URL", f"s3://{s3_bucket}/landing/hr")
    monkeypatch.setenv("ETL_STORAGE_URL", f"s3://{s3_bucket}/storage")
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    for name in FILES:
        s3.put_object(Bucket=s3_bucket, Key=f"landing/hr/{name}", Body=sample_bytes(name))
    s3.put_object(Bucket=s3_bucket, Key="landing/hr/notes.txt", Body=b"not a table")
    hr = migration(postgres_url)

    hr.tick_and_run()

    assert table_counts(postgres_url, LOADED) == LOADED
    assert count(postgres_url, "ingest_rejections", "WHERE source = 'hired_employees.csv'") == REJECTED
    kept = s3.list_objects_v2(Bucket=s3_bucket, Prefix="storage/hr/raw/")["Contents"]
    assert sorted(item["Key"].split("/")[3] for item in kept) == ["departments", "hired_employees", "jobs"]
    assert hr.tick().run_requests == []

    # The same content uploaded again keeps its ETag: nothing to do. Other content: a new run.
    s3.put_object(Bucket=s3_bucket, Key="landing/hr/jobs.csv", Body=sample_bytes("jobs.csv"))
    assert hr.tick().run_requests == []
    s3.put_object(Bucket=s3_bucket, Key="landing/hr/jobs.csv", Body=sample_bytes("jobs.csv") + b"\n184,Data Engineer")
    result = hr.tick_and_run()

    assert count(postgres_url, "jobs") == 184
    assert materialized(result)["hr/tables/jobs"]["inserted"] == 1


def test_no_transaction_holds_more_than_1000_rows(migration, landing, postgres_url):
    land_samples(landing)
    hr = migration(postgres_url)

    result = hr.tick_and_run()

    hires = materialized(result)["hr/tables/hired_employees"]
    assert (hires["transactions"], hires["largest_transaction_rows"]) == (2, MAX_BATCH_ROWS)
    # Postgres stamps every row with the transaction that wrote it (xmin): a batch's valid
    # rows and its rejections share one, and no transaction wrote more than 1000 rows.
    written = row_dicts(
        postgres_url,
        "SELECT xid, sum(loaded) AS loaded, sum(rejected) AS rejected FROM ("
        " SELECT xmin::text AS xid, 1 AS loaded, 0 AS rejected FROM hired_employees"
        " UNION ALL SELECT xmin::text, 0, 1 FROM ingest_rejections) AS w GROUP BY xid ORDER BY xid",
    )
    assert [row["loaded"] + row["rejected"] for row in written] == [1000, 999]
    assert all(row["loaded"] and row["rejected"] for row in written)


def test_smaller_batches_split_the_load_into_more_transactions(migration, landing, postgres_url):
    land_samples(landing)
    hr = migration(postgres_url)
    config = migration_run_config(list(FILES))
    config["ops"]["hr_tables"]["config"]["batch_rows"] = 250

    result = hr.run(run_config=config)

    assert result.success
    assert materialized(result)["hr/tables/hired_employees"]["transactions"] == 8
    written = row_dicts(
        postgres_url,
        "SELECT count(*) AS n FROM (SELECT xmin::text AS xid FROM hired_employees"
        " UNION ALL SELECT xmin::text FROM ingest_rejections) AS w GROUP BY xid",
    )
    assert sorted(row["n"] for row in written) == [249] + [250] * 7
    assert table_counts(postgres_url, LOADED) == LOADED


def test_a_file_named_in_the_run_config_must_have_landed(migration, landing, sqlite_url):
    (landing / "jobs.csv").write_bytes(sample_bytes("jobs.csv"))
    hr = migration(sqlite_url)

    missing = hr.run(run_config=migration_run_config(["departments.csv"]))
    unknown = hr.run(run_config=migration_run_config(["salaries.csv"]))

    assert not missing.success and not unknown.success


def test_without_run_config_every_landed_file_loads_and_the_reports_still_refresh(migration, landing, sqlite_url):
    (landing / "departments.csv").write_bytes(sample_bytes("departments.csv"))
    hr = migration(sqlite_url)

    result = hr.run()

    assert result.success
    metadata = materialized(result)
    assert metadata["hr/tables/departments"]["rows_loaded"] == 12
    assert metadata["hr/tables/hired_employees"]["rows_read"] == 0
    assert metadata["hr/reports/hires_by_quarter"]["dagster/row_count"] == 0
    assert count(sqlite_url, "departments") == 12


def test_parse_csv_keeps_empty_fields_and_skips_blank_lines():
    assert parse_csv(b"\xef\xbb\xbf1,a,\n\n2,\"b, c\",3") == [["1", "a", ""], ["2", "b, c", "3"]]
    assert len(parse_csv(sample_bytes("hired_employees.csv"))) == len(sample_frame("hired_employees.csv")) == 1999


def test_the_cli_job_loads_the_landing_place_and_refreshes_the_reports(landing, postgres_url, tmp_path):
    land_samples(landing)
    env = {"ETL_WAREHOUSE_URL": postgres_url, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    os.makedirs(env["DAGSTER_HOME"])

    run = dagster_cli("job", "execute", "-m", "etl_platform.definitions", "-j", "hr_migration", env=env)

    assert run.returncode == 0, run.stderr[-3000:]
    assert table_counts(postgres_url, LOADED) == LOADED
    assert count(postgres_url, "ingest_rejections") == REJECTED
    stored = row_dicts(
        postgres_url,
        "SELECT id, department, hired FROM report_departments_above_mean WHERE year = 2021 ORDER BY hired DESC, id",
    )
    assert stored == expected_departments_above_mean(2021)
    assert count(postgres_url, "report_hires_by_quarter", "WHERE year = 2021") == len(expected_hires_by_quarter(2021))

