"""Backup and restore of the HR tables: AVRO files per table per day, proven restorable.

- `ops/backup/hr_tables` (daily partitions, UTC): every HR table written in one consistent
  snapshot to `<ETL_STORAGE_URL>/ops/backup/hr_tables/<day>/<table>.avro`, schema embedded;
  row counts, sizes, paths and checksums are recorded as materialization metadata.
- `restores_exactly` (asset check): restores each file of the day into a scratch place and
  compares row counts and checksums with those recorded at backup time.
- `hr_restore` (job): restores a day's files into the warehouse in one transaction.
- `hr_backup_schedule`: Saturdays 00:00 UTC, backing up as the day that just ended (Friday).
"""

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta, timezone

import sqlalchemy as sa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetRecordsFilter,
    AssetSelection,
    Config,
    DagsterInstance,
    DailyPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    ScheduleEvaluationContext,
    asset,
    asset_check,
    define_asset_job,
    job,
    op,
    schedule,
)
from pydantic import Field
from upath import UPath

from etl_platform.defs.hr import tables as hr_tables
from etl_platform.defs.hr.keys import BACKUP_KEY, OWNERS, REJECTIONS_KEY, TABLE_KEYS
from etl_platform.lib.avro import AvroTableError, restore_table, restore_tables, table_checksum, write_table
from etl_platform.lib.storage import StorageResource
from etl_platform.lib.warehouse import WarehouseResource, is_postgres

RESTORES_EXACTLY = "restores_exactly"
RESTORE_JOB = "hr_restore"
RESTORE_OP = "restore_hr_tables"

# In load order: referenced tables first.
BACKED_UP: dict[str, sa.Table] = {
    table.name: table
    for table in (hr_tables.departments, hr_tables.jobs, hr_tables.hired_employees, hr_tables.ingest_rejections)
}

backup_daily = DailyPartitionsDefinition(start_date="2021-01-01", timezone="UTC")


def backup_folder(root: UPath, day: str) -> UPath:
    """`<root>/ops/backup/hr_tables/<day>`: the files of one day's backup."""
    return root.joinpath(*BACKUP_KEY.path, day)


def backup_path(root: UPath, day: str, table: str) -> UPath:
    return backup_folder(root, day) / f"{table}.avro"


# --- backup -----------------------------------------------------------------------------------


@contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only transaction in which every table is seen at the same instant, so that the
    files of one day agree with each other (no employee without its department)."""
    if engine.dialect.name == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with engine.connect().execution_options(**options) as connection, connection.begin():
            yield connection
        return
    with engine.connect() as connection:
        # pysqlite opens no transaction for reads: without one each SELECT sees a new state.
        connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.rollback()


@asset(
    key=BACKUP_KEY,
    group_name="ops",
    partitions_def=backup_daily,
    deps=[*TABLE_KEYS.values(), REJECTIONS_KEY],
    kinds={"avro", "sqlalchemy"},
    owners=OWNERS,
    description=(
        "Backup of every HR table (departments, jobs, hired_employees, ingest_rejections) as "
        "AVRO files with the schema embedded, one per table, under "
        "`<ETL_STORAGE_URL>/ops/backup/hr_tables/<day>/<table>.avro`, taken in one consistent "
        "snapshot. Rows, bytes, paths and checksums per table are recorded here; the "
        "`restores_exactly` check proves the files restore, the `hr_restore` job restores them."
    ),
)
def hr_tables_backup(
    context: AssetExecutionContext, storage: StorageResource, warehouse: WarehouseResource
) -> MaterializeResult:
    warehouse.ensure_tables(hr_tables.metadata)
    day = context.partition_key
    folder = backup_folder(storage.root(), day)
    with snapshot(warehouse.engine) as connection:
        written = [write_table(connection, table, folder / f"{name}.avro") for name, table in BACKED_UP.items()]
    metadata: dict = {
        "dagster/row_count": sum(item.rows for item in written),
        "folder": MetadataValue.path(str(folder)),
        "tables": MetadataValue.json([item.table for item in written]),
    }
    for item in written:
        context.log.info(f"{item.table}: {item.rows} row(s), {item.bytes} bytes -> {item.path}")
        metadata.update(
            {
                f"{item.table}/rows": MetadataValue.int(item.rows),
                f"{item.table}/bytes": MetadataValue.int(item.bytes),
                f"{item.table}/checksum": MetadataValue.text(item.checksum),
                f"{item.table}/path": MetadataValue.path(item.path),
            }
        )
    return MaterializeResult(metadata=metadata)


@dataclass(frozen=True)
class Recorded:
    """A table's row count and checksum as written at backup time."""

    rows: int
    checksum: str


def recorded_backup(instance: DagsterInstance, day: str) -> dict[str, Recorded] | None:
    """What the latest backup of `day` recorded per table; None if the day was never backed up."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=BACKUP_KEY, asset_partitions=[day]), limit=1
    ).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    return {
        name: Recorded(rows=int(metadata[f"{name}/rows"].value), checksum=str(metadata[f"{name}/checksum"].value))
        for name in BACKED_UP
        if f"{name}/rows" in metadata and f"{name}/checksum" in metadata
    }


# --- restore check ----------------------------------------------------------------------------


def _scratch_copy(table: sa.Table, metadata: sa.MetaData, schema: str) -> sa.Table:
    # Columns and primary key only: each file is proven on its own, and no sequence is made.
    return sa.Table(
        table.name,
        metadata,
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False)
            for c in table.columns
        ),
        schema=schema,
    )


@contextmanager
def scratch_tables(
    engine: sa.Engine, tables: Sequence[sa.Table]
) -> Iterator[tuple[sa.Connection, dict[str, sa.Table]]]:
    """Empty copies of `tables` in a throwaway place, gone when the block ends.

    Postgres: a new schema, created in a transaction that is rolled back. SQLite: a temporary
    database attached to the connection (SQLite deletes it when it is detached).
    """
    name = f"backup_check_{uuid.uuid4().hex[:12]}"
    metadata = sa.MetaData()
    copies = {table.name: _scratch_copy(table, metadata, name) for table in tables}
    with engine.connect() as connection:
        if is_postgres(connection):
            transaction = connection.begin()
            try:
                connection.execute(sa.schema.CreateSchema(name))
                metadata.create_all(connection)
                yield connection, copies
            finally:
                transaction.rollback()
            return
        connection.exec_driver_sql(f"ATTACH DATABASE '' AS {name}")
        try:
            metadata.create_all(connection)
            connection.commit()
            yield connection, copies
        finally:
            connection.rollback()
            connection.exec_driver_sql(f"DETACH DATABASE {name}")
            connection.commit()


@dataclass
class Verified:
    """The outcome of restoring one table's file into scratch."""

    table: str
    rows: int | None = None
    checksum: str | None = None
    problem: str | None = None


def verify_backup(engine: sa.Engine, root: UPath, day: str, recorded: dict[str, Recorded]) -> list[Verified]:
    """Restore each recorded file of `day` into scratch tables and compare with the record."""
    outcomes = []
    with scratch_tables(engine, [BACKED_UP[name] for name in recorded]) as (connection, copies):
        postgres = is_postgres(connection)
        for name, expected in recorded.items():
            outcome = Verified(name)
            outcomes.append(outcome)
            path = backup_path(root, day, name)
            # A savepoint keeps a failed table from aborting the others' transaction on Postgres.
            savepoint = connection.begin_nested() if postgres else None
            try:
                outcome.rows = restore_table(connection, copies[name], path)
                outcome.checksum = table_checksum(connection, copies[name])
            except FileNotFoundError:
                outcome.problem = f"{name}: file {path} is missing"
            except Exception as error:  # a corrupt file fails in fastavro, zlib or the database
                reason = getattr(error, "orig", None) or error
                outcome.problem = f"{name}: {path} does not restore ({type(reason).__name__}: {reason})"
            finally:
                if savepoint is not None and outcome.problem:
                    savepoint.rollback()
                elif savepoint is not None:
                    savepoint.commit()
            if outcome.problem:
                continue
            if outcome.rows != expected.rows:
                outcome.problem = f"{name}: {outcome.rows} row(s) restored, {expected.rows} backed up"
            elif outcome.checksum != expected.checksum:
                outcome.problem = f"{name}: checksum {outcome.checksum} restored, {expected.checksum} backed up"
    return outcomes


@asset_check(
    asset=BACKUP_KEY,
    name=RESTORES_EXACTLY,
    partitions_def=backup_daily,
    description=(
        "Restores every file of the day's backup into a scratch schema (Postgres, rolled back) "
        "or a temporary attached database (SQLite) and compares row counts and checksums with "
        "those recorded at backup time. Fails naming each table whose file is missing, "
        "unreadable, or restores to different rows."
    ),
)
def backup_restores_exactly(
    context: AssetCheckExecutionContext, storage: StorageResource, warehouse: WarehouseResource
) -> AssetCheckResult:
    day = context.partition_key
    recorded = recorded_backup(context.instance, day)
    if not recorded:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"no backup of {day} is recorded: nothing to prove",
        )
    outcomes = verify_backup(warehouse.engine, storage.root(), day, recorded)
    problems = [outcome.problem for outcome in outcomes if outcome.problem]
    metadata: dict = {"failed_tables": MetadataValue.json([o.table for o in outcomes if o.problem])}
    for outcome in outcomes:
        rows = outcome.rows if outcome.rows is not None else -1  # -1: the file did not restore
        metadata[f"{outcome.table}/rows_restored"] = MetadataValue.int(rows)
        metadata[f"{outcome.table}/checksum_restored"] = MetadataValue.text(outcome.checksum or "")
    for problem in problems:
        context.log.error(problem)
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
        description="; ".join(problems) if problems else f"{len(outcomes)} table(s) restore exactly",
    )


# --- restore job ------------------------------------------------------------------------------


class RestoreConfig(Config):
    day: str = Field(description="the backup day to restore, YYYY-MM-DD (a partition of ops/backup/hr_tables)")
    tables: list[str] = Field(
        default_factory=lambda: list(BACKED_UP),
        description=f"tables to restore (default all: {', '.join(BACKED_UP)}); restored in load order",
    )


def restore_run_config(day: str, tables: Sequence[str] | None = None) -> dict:
    """Run config of the `hr_restore` job for a day and, optionally, some of the tables."""
    config: dict = {"day": day}
    if tables is not None:
        config["tables"] = list(tables)
    return {"ops": {RESTORE_OP: {"config": config}}}


def restore_plan(day: str, tables: Sequence[str]) -> list[sa.Table]:
    """The tables to restore, validated, in load order."""
    try:
        date.fromisoformat(day)
    except ValueError:
        raise Failure(description=f"day {day!r} is not a date (YYYY-MM-DD)") from None
    unknown = sorted(set(tables) - set(BACKED_UP))
    if unknown:
        raise Failure(description=f"tables {unknown} are not backed up; choose among {list(BACKED_UP)}")
    if not tables:
        raise Failure(description="no table to restore")
    return [table for name, table in BACKED_UP.items() if name in tables]


@op(
    name=RESTORE_OP,
    description=(
        "Replaces the rows of the chosen HR tables with those of a day's backup files, in one "
        "transaction and in load order; verified against the checksums recorded at backup time. "
        "If any table fails, nothing changes."
    ),
    tags={"kind": "avro"},
)
def restore_hr_tables(
    context: OpExecutionContext, config: RestoreConfig, storage: StorageResource, warehouse: WarehouseResource
) -> Output[dict]:
    tables = restore_plan(config.day, config.tables)
    root = storage.root()
    files = [(table, backup_path(root, config.day, table.name)) for table in tables]
    missing = [str(path) for _, path in files if not path.exists()]
    if missing:
        raise Failure(
            description=f"no backup of {config.day} for {len(missing)} table(s); nothing was restored",
            metadata={"missing_files": MetadataValue.json(missing)},
        )
    recorded = recorded_backup(context.instance, config.day) or {}
    unverified = [table.name for table in tables if table.name not in recorded]
    if unverified:
        context.log.warning(f"no checksum recorded for {unverified} on {config.day}: row values are not verified")
    warehouse.ensure_tables(hr_tables.metadata)
    try:
        with warehouse.begin() as connection:
            restored = restore_tables(connection, files)
            for table in tables:
                expected = recorded.get(table.name)
                if expected is None:
                    continue
                checksum = table_checksum(connection, table)
                if (restored[table.name], checksum) != (expected.rows, expected.checksum):
                    raise AvroTableError(
                        f"table {table.name} restored {restored[table.name]} row(s) with checksum {checksum}, "
                        f"but the backup recorded {expected.rows} with {expected.checksum}"
                    )
    except AvroTableError as error:
        raise Failure(description=f"restore of {config.day} failed, nothing was changed: {error}") from error
    for name, rows in restored.items():
        context.log.info(f"{name}: {rows} row(s) restored from {config.day}")
    return Output(
        restored,
        metadata={
            "day": config.day,
            "verified_tables": MetadataValue.json([name for name in restored if name in recorded]),
            **{f"{name}/rows": MetadataValue.int(rows) for name, rows in restored.items()},
        },
    )


@job(
    name=RESTORE_JOB,
    description=(
        "Restores HR tables from a day's AVRO backup, all in one transaction. Config: "
        '`{"day": "YYYY-MM-DD", "tables": [...]}` (tables default to all). On Postgres, a table '
        "still referenced by rows of a table not restored with it cannot be emptied: restore both."
    ),
)
def hr_restore():
    restore_hr_tables()


# --- schedule ---------------------------------------------------------------------------------

hr_backup_job = define_asset_job(
    "hr_backup",
    selection=AssetSelection.assets(BACKUP_KEY),
    partitions_def=backup_daily,
    description="Backs up the HR tables to AVRO for one day, then proves the files restore.",
)


@schedule(
    name="hr_backup_schedule",
    job=hr_backup_job,
    cron_schedule="0 0 * * 6",
    execution_timezone="UTC",
    description="Saturdays 00:00 UTC, as the original did: backs up as the day that just ended (Friday).",
)
def hr_backup_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    day = (context.scheduled_execution_time.astimezone(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    return RunRequest(run_key=day, partition_key=day)
