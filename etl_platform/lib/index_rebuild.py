"""Bulk loads on Postgres: drop a table's indexes, load, build them again, in one transaction.

PostgreSQL's own advice for adding much data to an existing table ("Populating a Database"):
building an index over all rows at once is cheaper than maintaining it row by row. Measured on
200k CVE rows (half new, half changed) into a `cve` table of 100k rows with its three indexes:
maintaining them costs ~6-9 us a row written; building them again ~2 us a row held
(benchmarks/README.md). Which batches rebuild is the merge's plan (`etl_platform.lib.merge_plan`:
a first load, a backfill, a day on which NVD re-analysed half of its CVEs; never an ordinary
day's few thousand changes into a table of 300k).

The price is the lock: the table is locked against readers and writers (ACCESS EXCLUSIVE) from
the start of the merge to the end of the caller's transaction. Readers wait (they never see a
table without its indexes); a lock that is not granted within the plan's `lock_timeout` (a long
reader), or that would deadlock with another merge's, sends the merge down its direct path.
Tables whose indexes something else depends on (a foreign key referencing them, replica
identity, clustering, an index comment or tablespace, an invalid index) are never rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from etl_platform.lib.warehouse import quoted_table

# For the hash join of the stage with the table: the table's side of 100k CVE rows spills to
# disk at the default 4MB (~0.1 s of a 200k-row merge).
UPDATE_WORK_MEM = "64MB"


@dataclass(frozen=True)
class TableIndexes:
    """A table's indexes as statements: how to drop them and how to build them again."""

    drops: tuple[str, ...]
    creates: tuple[str, ...]


class RebuildRefused(Exception):
    """The table's indexes are not to be dropped and built again; the message says why."""


def lock_for_bulk_load(connection: sa.Connection, table: sa.Table, lock_timeout: str) -> TableIndexes:
    """Lock `table` for the rest of the transaction and return its indexes, to drop and build again.

    Raises `RebuildRefused`, with no more than a reader's lock taken, when something depends on the
    indexes or the lock is not granted within `lock_timeout` or would deadlock; and, rarely, with the
    lock held, when the indexes changed while it waited (to be read again under the lock).
    """
    from psycopg.errors import DeadlockDetected, LockNotAvailable

    name = quoted_table(connection, table)
    # Readers' lock first, as any read of the table takes: it waits for a merge that has this table's
    # indexes dropped, whose catalog rows are in flux ("cache lookup failed" when read meanwhile).
    connection.exec_driver_sql(f"LOCK TABLE {name} IN ACCESS SHARE MODE")
    _rebuildable_indexes(connection, name)  # refused before the table is locked against readers
    try:
        with connection.begin_nested(), transaction_setting(connection, "lock_timeout", lock_timeout):
            connection.exec_driver_sql(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
    except sa.exc.OperationalError as error:
        # Not granted in time (a long reader), or a deadlock: another bulk merge of this table,
        # whose transaction read the table first as this one did. Either way: the direct path.
        if isinstance(error.orig, LockNotAvailable):
            raise RebuildRefused(f"its lock was not granted within {lock_timeout}") from None
        if isinstance(error.orig, DeadlockDetected):
            raise RebuildRefused("its lock would deadlock with another merge's") from None
        raise
    # Read again under the lock: an index created or dropped meanwhile is seen as it now is.
    try:
        return _rebuildable_indexes(connection, name)
    except RebuildRefused as refusal:
        raise RebuildRefused(f"{refusal} (found once locked; the lock is kept)") from None


@contextmanager
def indexes_dropped(connection: sa.Connection, indexes: TableIndexes) -> Iterator[None]:
    """Drop the indexes, run the body, build them again; all inside a savepoint, so that an
    error in the body (even one Postgres never saw) leaves the table with its indexes."""
    with connection.begin_nested():
        for statement in indexes.drops:
            connection.exec_driver_sql(statement)
        yield
        for statement in indexes.creates:
            connection.exec_driver_sql(statement)


def held_rows(connection: sa.Connection, table: sa.Table) -> float:
    """The planner's estimate of the table's rows: its last counted density times its size now.

    Read from the catalog and the statistics, never by counting: a `count(*)` would hold a
    lock on the table that the rebuild's lock must then wait for, in another merge too.
    """
    tuples, pages, current, live = connection.execute(
        sa.text(
            "SELECT reltuples, relpages, pg_relation_size(oid) / current_setting('block_size')::int, "
            "pg_stat_get_live_tuples(oid) FROM pg_class WHERE oid = CAST(:name AS regclass)"
        ),
        {"name": quoted_table(connection, table)},
    ).one()
    if current == 0:
        return 0
    if tuples < 0 or pages == 0:  # never vacuumed nor analysed: the rows inserted, less those deleted
        return live
    return tuples / pages * current


def _rebuildable_indexes(connection: sa.Connection, name: str) -> TableIndexes:
    """The table's indexes as statements; `RebuildRefused` if something depends on them."""
    referenced, kind = connection.execute(
        sa.text(
            "SELECT EXISTS (SELECT FROM pg_constraint WHERE confrelid = c.oid AND contype = 'f'), c.relkind "
            "FROM pg_class c WHERE c.oid = CAST(:name AS regclass)"
        ),
        {"name": name},
    ).one()
    if referenced:
        raise RebuildRefused("a foreign key references the table")
    if kind != "r":
        raise RebuildRefused("it is not a plain table")
    rows = connection.execute(
        sa.text(
            """
            SELECT i.indexrelid::regclass::text AS index_name, pg_get_indexdef(i.indexrelid) AS index_def,
                   k.conname, pg_get_constraintdef(k.oid) AS constraint_def,
                   i.indisvalid AND i.indisready AND NOT i.indisreplident AND NOT i.indisclustered
                   AND x.reltablespace = 0 AND obj_description(i.indexrelid, 'pg_class') IS NULL
                   AND (k.oid IS NULL OR (k.contype IN ('p', 'u', 'x')
                                          AND obj_description(k.oid, 'pg_constraint') IS NULL)) AS safe
            FROM pg_index i
            JOIN pg_class x ON x.oid = i.indexrelid
            LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
            WHERE i.indrelid = CAST(:name AS regclass)
            ORDER BY i.indexrelid
            """
        ),
        {"name": name},
    ).all()
    unsafe = [row.index_name for row in rows if not row.safe]
    if unsafe:
        # Replica identity, clustering, a comment or tablespace, an invalid index: not rebuilt as it was.
        raise RebuildRefused(f"something depends on its index {unsafe[0]} as it is")
    quote = connection.dialect.identifier_preparer.quote
    # A key constraint owns its index: dropped and added back as the constraint it is.
    drops = tuple(
        f"ALTER TABLE {name} DROP CONSTRAINT {quote(row.conname)}" if row.conname else f"DROP INDEX {row.index_name}"
        for row in rows
    )
    creates = tuple(
        f"ALTER TABLE {name} ADD CONSTRAINT {quote(row.conname)} {row.constraint_def}" if row.conname else row.index_def
        for row in rows
    )
    return TableIndexes(drops=drops, creates=creates)


@contextmanager
def transaction_setting(connection: sa.Connection, name: str, value: str) -> Iterator[None]:
    """The server setting `name` at `value` for the body, then back to what it was.

    Set as `SET LOCAL` does; should the body fail, the rollback of the transaction (or of the
    caller's savepoint) takes the setting back.
    """
    previous = connection.execute(sa.text("SELECT current_setting(:name)"), {"name": name}).scalar_one()
    _set(connection, name, value)
    yield
    _set(connection, name, previous)


def _set(connection: sa.Connection, name: str, value: str) -> None:
    connection.execute(sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
