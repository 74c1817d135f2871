"""Replace and append: the two writes beside the merge (`etl_platform.lib.upsert.merge`).

- `replace(connection, table, rows)`: every stored row deleted, then `rows` inserted (a report
  computed whole again, a table restored from a file);
- `append(connection, table, rows)`: `rows` inserted as they are, nothing compared (a log).

`rows` is a DataFrame, bulk-loaded (`etl_platform.lib.bulk_load`: binary `COPY` on Postgres), or
mappings of column to value as SQLAlchemy binds them, streamed: on Postgres through `COPY`,
each value first passed through its column type's bind processing (JSON, enums...), elsewhere
by batched inserts (None is SQL NULL in `COPY`, even in a JSON column). Both return what they
wrote, for materialization metadata. The caller owns the transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from etl_platform.lib.bulk_load import load_rows
from etl_platform.lib.warehouse import is_postgres

CHUNK_ROWS = 10_000

Rows = pd.DataFrame | Iterable[Mapping[str, Any]]


@dataclass
class WriteResult:
    """What a replace or an append did, for materialization metadata."""

    table: str
    deleted: int = 0
    inserted: int = 0

    def as_metadata(self) -> dict[str, int]:
        return {f"{self.table}/deleted": self.deleted, f"{self.table}/inserted": self.inserted}


def replace(connection: sa.Connection, table: sa.Table, rows: Rows) -> WriteResult:
    """Delete every row of `table`, then insert `rows`."""
    deleted = connection.execute(table.delete()).rowcount
    result = append(connection, table, rows)
    result.deleted = deleted
    return result


def append(connection: sa.Connection, table: sa.Table, rows: Rows) -> WriteResult:
    """Insert `rows` into `table` (every mapping with the same columns; the others take their defaults)."""
    if isinstance(rows, pd.DataFrame):
        load_rows(connection, table, rows)
        return WriteResult(table.name, inserted=len(rows))
    records = iter(rows)
    first = next(records, None)
    if first is None:
        return WriteResult(table.name)
    records = itertools.chain([first], records)
    if is_postgres(connection):
        return WriteResult(table.name, inserted=_copy_records(connection, table, list(first), records))
    inserted = 0
    for chunk in _chunks(records, CHUNK_ROWS):
        connection.execute(table.insert(), chunk)
        inserted += len(chunk)
    return WriteResult(table.name, inserted=inserted)


def _copy_records(
    connection: sa.Connection, table: sa.Table, names: list[str], records: Iterable[Mapping[str, Any]]
) -> int:
    import psycopg
    from psycopg import sql

    dialect = connection.dialect
    # What SQLAlchemy would do to each value before handing it to the driver (JSON -> Json(...)).
    processors = [
        (position, process)
        for position, name in enumerate(names)
        if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    target = sql.Identifier(*filter(None, (table.schema, table.name)))
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(map(sql.Identifier, names)))
    inserted = 0
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for record in records:
                row = [record[name] for name in names]
                for position, process in processors:
                    if row[position] is not None:
                        row[position] = process(row[position])
                copy.write_row(row)
                inserted += 1
    except psycopg.Error as error:
        # As SQLAlchemy raises the errors of the statements it runs (IntegrityError, ...).
        raise sa.exc.DBAPIError.instance(statement.as_string(driver), None, error, psycopg.Error) from error
    return inserted


def _chunks(records: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
