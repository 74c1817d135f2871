"""HR backup and restore through the code location: AVRO files per day, the restore check, the
restore job and the weekly schedule, on Postgres, SQLite and the loopback S3 server."""

import datetime as dt

import boto3
import fastavro
import pytest
import sqlalchemy as sa
from dagster import AssetCheckKey, DagsterInstance, build_schedule_context

from etl_platform.definitions import build_definitions, defs
from etl_platform.defs.hr import tables as hr
from etl_platform.defs.ops.checks import RESTORES_EXACTLY
from etl_platform.defs.ops.keys import BACKUP_KEY
from etl_platform.defs.ops.restore import restore_run_config
from etl_platform.defs.ops.schedules import hr_backup_schedule
from etl_platform.lib.avro import avro_schema, read_schema
from etl_platform.lib.storage import storage_root
from etl_platform.lib.warehouse import engine_for

UTC = dt.timezone.utc
DAY = "2024-06-07"
TABLES = ("departments", "jobs", "hired_employees", "ingest_rejections")
CHECK_KEY = AssetCheckKey(BACKUP_KEY, RESTORES_EXACTLY)

DEPARTMENTS = [
    {"id": 1, "department": "Supply Chain"},
    {"id": 2, "department": "Ingeniería — I+D ✓"},
    {"id": 3, "department": 'Legal, "Compliance"\nand Risk'},
]
JOBS = [{"id": 1, "job": "Recruiter"}, {"id": 2, "job": "数据工程师"}, {"id": 3, "job": ""}]
EMPLOYEES = [
    dict(zip(("id", "name", "datetime", "department_id", "job_id"), values))
    for values in [
        (1, "Zoë Ångström", dt.datetime(2021, 7, 27, 16, 2, 8, 123456, tzinfo=UTC), 1, 2),
        (2, "O'Brien, Jr.", dt.datetime(2021, 1, 1, 0, 0, 0, 1, tzinfo=UTC), 2, 1),
        (3, "Nguyễn Thị Minh Khai", dt.datetime(2021, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 3, 3),
        (4, "", dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), 2, 2),
    ]
]
REJECTIONS = [
    {
        "table_name": "hired_employees",
        "payload": '{"id": 5, "name": "Ana", "datetime": null}',
        "reason": "datetime: required",
        "source": "hired_employees.csv",
        "received_at": dt.datetime(2024, 6, 7, 12, 30, 0, 654321, tzinfo=UTC),
    },
    {
        "table_name": "jobs",
        "payload": '{"id": "x"}',
        "reason": "id: not an integer ✗",
        "source": "api",
        "received_at": dt.datetime(2024, 6, 7, 12, 30, 1, 1, tzinfo=UTC),
    },
]


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every backed-up table, in key order."""
    with engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.execute(sa.select(table).order_by(table.c.id))]
            for name, table in ((name, hr.metadata.tables[name]) for name in TABLES)
        }


def empty_tables(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for name in reversed(TABLES):
            connection.execute(hr.metadata.tables[name].delete())


def fill_tables(engine: sa.Engine) -> None:
    """The HR tables created, holding a few rows each."""
    hr.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(hr.departments.insert(), DEPARTMENTS)
        connection.execute(hr.jobs.insert(), JOBS)
        connection.execute(hr.hired_employees.insert(), EMPLOYEES)
        connection.execute(hr.ingest_rejections.insert(), REJECTIONS)


@pytest.fixture
def warehouse_url(any_warehouse_url, etl_env, monkeypatch) -> str:
    """The warehouse the code location uses, holding a few rows of every HR table."""
    monkeypatch.setenv("ETL_WAREHOUSE_URL", any_warehouse_url)
    engine = engine_for(any_warehouse_url)
    fill_tables(engine)
    return any_warehouse_url


@pytest.fixture
def instance() -> DagsterInstance:
    with DagsterInstance.ephemeral() as instance:
        yield instance


def location():
    """The code location as a run loads it: bound to the environment the test set."""
    return build_definitions()


def back_up(instance: DagsterInstance, day: str = DAY):
    """Run the weekly job for a day by hand: the backup and its restore check."""
    return location().resolve_job_def("hr_backup").execute_in_process(partition_key=day, instance=instance)


def restore(instance: DagsterInstance, day: str = DAY, tables=None):
    return location().resolve_job_def("hr_restore").execute_in_process(
        run_config=restore_run_config(day, tables), instance=instance, raise_on_error=False
    )


def check_only(instance: DagsterInstance, day: str = DAY):
    """Run the restore check alone against the files as they are now."""
    job = location().resolve_job_def("hr_backup").get_subset(asset_selection=set(), asset_check_selection={CHECK_KEY})
    result = job.execute_in_process(partition_key=day, instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_a_backup_writes_one_avro_file_per_table_with_the_schema_and_records_it(warehouse_url, instance):
    result = back_up(instance)

    assert result.success
    folder = storage_root().joinpath("ops", "backup", "hr_tables", DAY)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.avro" for name in TABLES)
    for name in TABLES:
        assert read_schema(folder / f"{name}.avro") == avro_schema(hr.metadata.tables[name])
    (materialization,) = result.asset_materializations_for_node("ops__backup__hr_tables")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["dagster/row_count"] == 3 + 3 + 4 + 2
    assert metadata["hired_employees/rows"] == 4
    assert metadata["hired_employees/path"] == str(folder / "hired_employees.avro")
    assert metadata["hired_employees/bytes"] == (folder / "hired_employees.avro").stat().st_size
    assert len(metadata["hired_employees/checksum"]) == 16
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == RESTORES_EXACTLY and evaluation.passed, evaluation.description


def test_a_round_trip_restores_every_row_and_value_exactly(warehouse_url, instance):
    engine = engine_for(warehouse_url)
    before = snapshot(engine)
    assert back_up(instance).success
    empty_tables(engine)

    result = restore(instance)

    assert result.success, result.all_events
    assert snapshot(engine) == before
    restored = result.output_for_node("restore_hr_tables")
    assert restored == {"departments": 3, "jobs": 3, "hired_employees": 4, "ingest_rejections": 2}


def test_a_restore_replaces_what_changed_since_the_backup(warehouse_url, instance):
    engine = engine_for(warehouse_url)
    before = snapshot(engine)
    back_up(instance)
    with engine.begin() as connection:
        connection.execute(hr.departments.insert(), [{"id": 4, "department": "New"}])
        connection.execute(hr.hired_employees.update().where(hr.hired_employees.c.id == 1).values(name="changed"))
        connection.execute(hr.hired_employees.insert(), [{**EMPLOYEES[0], "id": 5, "department_id": 4}])

    assert restore(instance).success

    assert snapshot(engine) == before


def test_restoring_some_tables_leaves_the_others_and_new_rejections_get_fresh_ids(warehouse_url, instance):
    engine = engine_for(warehouse_url)
    back_up(instance)
    with engine.begin() as connection:
        connection.execute(hr.ingest_rejections.delete())
        connection.execute(hr.jobs.update().values(job=hr.jobs.c.job + " (renamed)"))
    renamed_jobs = snapshot(engine)["jobs"]

    assert restore(instance, tables=["ingest_rejections"]).success

    after = snapshot(engine)
    assert after["jobs"] == renamed_jobs
    assert [row[0] for row in after["ingest_rejections"]] == [1, 2]
    with engine.begin() as connection:  # the id sequence continues after the restored rows
        connection.execute(hr.ingest_rejections.insert(), [{**REJECTIONS[0], "reason": "later"}])
    assert [row[0] for row in snapshot(engine)["ingest_rejections"]] == [1, 2, 3]


def test_a_backup_round_trips_through_s3_into_a_new_warehouse(s3_bucket, etl_env, monkeypatch, sqlite_url, tmp_path):
    monkeypatch.setenv("ETL_STORAGE_URL", f"s3://{s3_bucket}/backups")
    monkeypatch.setenv("ETL_WAREHOUSE_URL", sqlite_url)
    engine = engine_for(sqlite_url)
    fill_tables(engine)
    before = snapshot(engine)
    with DagsterInstance.ephemeral() as instance:
        result = back_up(instance)
        assert result.success and result.get_asset_check_evaluations()[0].passed
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == sorted(f"backups/ops/backup/hr_tables/{DAY}/{name}.avro" for name in TABLES)

    # Disaster recovery: an empty warehouse elsewhere, and a Dagster instance that never saw the backup.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("ETL_WAREHOUSE_URL", fresh)
    with DagsterInstance.ephemeral() as instance:
        assert restore(instance).success

    assert snapshot(engine_for(fresh)) == before


@pytest.mark.parametrize("damage", ["overwrite_bytes", "drop_a_record", "change_a_value"])
def test_the_restore_check_catches_a_damaged_file_and_names_the_table(warehouse_url, instance, damage):
    assert back_up(instance).get_asset_check_evaluations()[0].passed
    path = storage_root().joinpath("ops", "backup", "hr_tables", DAY, "hired_employees.avro")
    if damage == "overwrite_bytes":
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 16] = b"\xde\xad\xbe\xef" * 4
        path.write_bytes(bytes(data))
    else:
        with path.open("rb") as handle:
            reader = fastavro.reader(handle)
            schema, records = reader.writer_schema, list(reader)
        if damage == "drop_a_record":
            records = records[:-1]
        else:
            records[1]["name"] = "O'Brien, Sr."
        with path.open("wb") as handle:
            fastavro.writer(handle, schema, records, codec="deflate")

    evaluation = check_only(instance)

    assert not evaluation.passed
    assert "hired_employees" in evaluation.description
    assert evaluation.metadata["failed_tables"].value == ["hired_employees"]
    expected = {
        "overwrite_bytes": "does not restore",
        "drop_a_record": "3 row(s) restored, 4 backed up",
        "change_a_value": "checksum",
    }
    assert expected[damage] in evaluation.description


def test_the_restore_check_leaves_no_scratch_behind(warehouse_url, instance):
    engine = engine_for(warehouse_url)
    back_up(instance)
    before = snapshot(engine)

    assert check_only(instance).passed

    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            schemas = sa.inspect(connection).get_schema_names()
            assert not [s for s in schemas if s.startswith("backup_check")]
    assert snapshot(engine) == before


def test_the_restore_check_fails_for_a_day_never_backed_up(warehouse_url, instance):
    evaluation = check_only(instance, "2024-06-08")

    assert not evaluation.passed
    assert "no backup of 2024-06-08" in evaluation.description


def test_restoring_a_missing_day_fails_clearly_and_changes_nothing(warehouse_url, instance):
    engine = engine_for(warehouse_url)
    before = snapshot(engine)

    result = restore(instance, day="2024-06-01")

    assert not result.success
    failure = result.failure_data_for_node("restore_hr_tables")
    assert "no backup of 2024-06-01" in failure.user_failure_data.description
    missing = failure.user_failure_data.metadata["missing_files"].value
    assert str(storage_root().joinpath("ops", "backup", "hr_tables", "2024-06-01", "departments.avro")) in missing
    assert snapshot(engine) == before


def test_a_table_failing_mid_restore_changes_nothing(warehouse_url, instance):
    engine = engine_for(warehouse_url)
    back_up(instance)
    with engine.begin() as connection:
        connection.execute(hr.jobs.insert(), [{"id": 9, "job": "added after the backup"}])
    before = snapshot(engine)
    path = storage_root().joinpath("ops", "backup", "hr_tables", DAY, "hired_employees.avro")
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8] = b"\x00" * 8
    path.write_bytes(bytes(data))

    result = restore(instance)

    assert not result.success
    description = result.failure_data_for_node("restore_hr_tables").user_failure_data.description
    assert "nothing was changed" in description and "hired_employees" in description
    assert snapshot(engine) == before


def test_an_unknown_table_is_refused(warehouse_url, instance):
    back_up(instance)

    result = restore(instance, tables=["jobs", "salaries"])

    assert not result.success
    failure = result.failure_data_for_node("restore_hr_tables").user_failure_data
    assert "['salaries'] are not backed up" in failure.description


def test_the_weekly_schedule_backs_up_friday_at_saturday_midnight_utc():
    assert hr_backup_schedule.cron_schedule == "0 0 * * 6"
    assert hr_backup_schedule.execution_timezone == "UTC"
    context = build_schedule_context(
        scheduled_execution_time=dt.datetime(2024, 6, 8, 0, 0, tzinfo=UTC), repository_def=defs.get_repository_def()
    )

    request = hr_backup_schedule.evaluate_tick(context).run_requests[0]

    assert request.partition_key == "2024-06-07"
    assert request.tags["dagster/partition"] == "2024-06-07"
    assert "hr_backup_schedule" in {s.name for s in defs.get_repository_def().schedule_defs}


def test_the_backup_asset_is_partitioned_daily_from_2021():
    graph = defs.get_repository_def().asset_graph
    node = graph.get(BACKUP_KEY)

    assert node.partitions_def.get_first_partition_key() == "2021-01-01"
    assert node.group_name == "ops"
    assert CHECK_KEY in graph.asset_check_keys
