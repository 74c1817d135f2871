"""The op of the `hr_restore` job: a day's AVRO backup restored into the warehouse, in one transaction."""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from dagster import Config, Failure, MetadataValue, OpExecutionContext, Output, op
from pydantic import Field

from etl_platform.defs.ops.backup import BACKED_UP, backup_path, recorded_backup
from etl_platform.lib.avro import AvroTableError, restore_tables, table_checksum
from etl_platform.lib.storage import StorageResource
from etl_platform.lib.warehouse import WarehouseResource

RESTORE_OP = "restore_hr_tables"


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
