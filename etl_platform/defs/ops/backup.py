"""The HR backup's files and records: where each day's AVRO files live, the consistent snapshot
they are written in, and what a backup recorded per table (rows, checksum) for later proof."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from dagster import AssetRecordsFilter, DagsterInstance
from upath import UPath

from etl_platform.defs.hr import tables as hr_tables
from etl_platform.defs.ops.keys import BACKUP_KEY

# In load order: referenced tables first.
BACKED_UP: dict[str, sa.Table] = {
    table.name: table
    for table in (hr_tables.departments, hr_tables.jobs, hr_tables.hired_employees, hr_tables.ingest_rejections)
}


def backup_folder(root: UPath, day: str) -> UPath:
    """`<root>/ops/backup/hr_tables/<day>`: the files of one day's backup."""
    return root.joinpath(*BACKUP_KEY.path, day)


def backup_path(root: UPath, day: str, table: str) -> UPath:
    return backup_folder(root, day) / f"{table}.avro"


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
