"""Proving a backup restores: each file of a day restored into throwaway tables and compared with
what the backup recorded (row count and checksum)."""

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from upath import UPath

from etl_platform.defs.ops.backup import BACKED_UP, Recorded, backup_path
from etl_platform.lib.avro import restore_table, table_checksum
from etl_platform.lib.warehouse import is_postgres


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
