"""Tables to AVRO files and back, exactly: the schema is derived from the SQLAlchemy `Table`.

A file holds one table, with its schema embedded (table and column comments become docs):

| SQL type                      | AVRO type                                              |
|-------------------------------|--------------------------------------------------------|
| integers                      | `long`                                                 |
| float                         | `double`                                               |
| numeric(p, s)                 | `bytes`, logical type `decimal` (precision p, scale s) |
| numeric without a precision   | `string` (the exact decimal text)                      |
| boolean                       | `boolean`                                              |
| text, enum                    | `string`                                               |
| JSON                          | `string` (the JSON text)                               |
| uuid                          | `string`, logical type `uuid`                          |
| timestamp (with or w/o zone)  | `long`, logical type `timestamp-micros` (UTC)          |
| date / time                   | `int` `date` / `long` `time-micros`                    |
| binary                        | `bytes`                                                |

A nullable column is the union `["null", T]` with default null, so a file written before a
nullable column was added still restores (AVRO schema resolution fills it with null).

`write_table` streams rows in key order from the database into a deflate-compressed file and
returns the row count, size and `table_checksum` of what it wrote; the file only appears at its
path once complete. `restore_table` / `restore_tables` replace a table's rows from a file inside
the caller's transaction. `table_checksum` is an order-independent checksum of a table's rows,
identical on Postgres and SQLite for the same values (timestamps compared as UTC instants to the
microsecond, NULL distinct from every value), so a restore can be proven exact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import fastavro
import sqlalchemy as sa
from upath import UPath

from etl_platform.lib.writes import append, replace

CODEC = "deflate"
CHUNK_ROWS = 10_000
_AVRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UTC = dt.timezone.utc
_CHECKSUM_MODULUS = 2**64


class AvroTableError(ValueError):
    """A table cannot be written to AVRO, or a file does not fit the table it should restore."""


@dataclass(frozen=True)
class WrittenTable:
    """What `write_table` wrote: for materialization metadata and for proving a restore."""

    table: str
    path: str
    rows: int
    bytes: int
    checksum: str


# --- schema -----------------------------------------------------------------------------------


def avro_schema(table: sa.Table) -> dict[str, Any]:
    """The AVRO record schema of a table (not yet parsed by fastavro)."""
    _require_avro_name(table.name, f"table {table.name!r}")
    schema: dict[str, Any] = {"type": "record", "name": table.name, "fields": [_field(c) for c in table.columns]}
    if table.schema:
        _require_avro_name(table.schema, f"schema {table.schema!r}")
        schema["namespace"] = table.schema
    if table.comment:
        schema["doc"] = table.comment
    return schema


def _field(column: sa.Column) -> dict[str, Any]:
    _require_avro_name(column.name, f"column {column.table.name}.{column.name}")
    avro_type = _avro_type(column)
    field: dict[str, Any] = {"name": column.name, "type": avro_type}
    if column.nullable:
        field["type"] = ["null", avro_type]
        field["default"] = None
    if column.comment:
        field["doc"] = column.comment
    return field


def _avro_type(column: sa.Column) -> Any:
    kind = column.type
    # Order matters: Float is a Numeric, Enum a String, BigInteger an Integer.
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.Integer):
        return "long"
    if isinstance(kind, sa.Float):
        return "double"
    if isinstance(kind, sa.Numeric):
        if kind.precision is None:
            return "string"
        return {"type": "bytes", "logicalType": "decimal", "precision": kind.precision, "scale": kind.scale or 0}
    if isinstance(kind, sa.Uuid):
        return {"type": "string", "logicalType": "uuid"}
    if isinstance(kind, (sa.String, sa.JSON)):
        return "string"
    if isinstance(kind, sa.DateTime):
        return {"type": "long", "logicalType": "timestamp-micros"}
    if isinstance(kind, sa.Date):
        return {"type": "int", "logicalType": "date"}
    if isinstance(kind, sa.Time):
        return {"type": "long", "logicalType": "time-micros"}
    if isinstance(kind, sa.LargeBinary):
        return "bytes"
    raise AvroTableError(f"column {column.table.name}.{column.name} has type {kind!r}, which has no AVRO mapping")


def _require_avro_name(name: str, what: str) -> None:
    if not _AVRO_NAME.match(name):
        raise AvroTableError(f"{what} is not a valid AVRO name ([A-Za-z_][A-Za-z0-9_]*)")


# --- value conversion -------------------------------------------------------------------------


def _to_avro(column: sa.Column) -> Callable[[Any], Any] | None:
    """How a value read from the database becomes a value fastavro writes (None: as it is)."""
    kind = column.type
    if isinstance(kind, sa.Float):
        return None
    if isinstance(kind, sa.Numeric) and kind.precision is None:
        return lambda value: format(value, "f") if isinstance(value, Decimal) else str(value)
    if isinstance(kind, sa.Uuid):
        return str
    if isinstance(kind, sa.JSON):
        return lambda value: json.dumps(value, sort_keys=True)
    if isinstance(kind, sa.DateTime):
        # fastavro would read a naive datetime as local time; the warehouse keeps UTC.
        return _as_utc
    return None


def _from_avro(column: sa.Column, dialect: str) -> Callable[[Any], Any] | None:
    """How a value read from a file becomes a value the database driver inserts."""
    kind = column.type
    if isinstance(kind, sa.Float):
        return None
    if isinstance(kind, sa.Numeric) and kind.precision is None:
        return Decimal
    if isinstance(kind, sa.Uuid):
        return None if kind.as_uuid else str  # fastavro reads the uuid logical type as UUID
    if isinstance(kind, sa.JSON):
        return json.loads  # SQLAlchemy's JSON type wants the object
    if isinstance(kind, sa.DateTime):
        if dialect == "postgresql" and kind.timezone:
            return None
        # SQLite (and Postgres `timestamp`) store the UTC wall time without a zone.
        return lambda value: value.astimezone(_UTC).replace(tzinfo=None)
    return None


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)


def _converter(columns: Sequence[sa.Column], converters: Sequence[Callable[[Any], Any] | None]):
    names = [c.name for c in columns]
    pairs = [(name, convert) for name, convert in zip(names, converters) if convert is not None]

    def convert_row(row: Sequence[Any]) -> dict[str, Any]:
        record = dict(zip(names, row))
        for name, convert in pairs:
            value = record[name]
            if value is not None:
                record[name] = convert(value)
        return record

    return convert_row


# --- checksum ---------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """One text per value, whatever the database and driver returned it as."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dt.datetime):
        return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        # 1.50 (numeric(12,2) on Postgres) and 1.5 are the same number.
        return "D" + format(value.normalize(), "f") if value.is_finite() else "D" + str(value)
    if isinstance(value, float):
        return "F" + repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "B" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dict, list)):
        return "J" + json.dumps(value, sort_keys=True)
    return f"{type(value).__name__}:{value}"


class Checksum:
    """Sum (mod 2**64) of a 64-bit hash per row: independent of row order, sensitive to
    duplicates, and the same on every database for the same values."""

    def __init__(self) -> None:
        self.rows = 0
        self._total = 0

    def add(self, row: Sequence[Any]) -> None:
        text = json.dumps([_canonical(value) for value in row], ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        self._total = (self._total + int.from_bytes(digest, "big")) % _CHECKSUM_MODULUS
        self.rows += 1

    @property
    def hexdigest(self) -> str:
        return f"{self._total:016x}"


def _select_in_key_order(table: sa.Table) -> sa.Select:
    # Key order makes files reproducible; a table without a key is read as it comes.
    return sa.select(*table.columns).order_by(*table.primary_key.columns)


def _stream(connection: sa.Connection, table: sa.Table) -> Iterator[sa.Row]:
    # A server-side cursor on Postgres: memory stays flat whatever the table's size.
    # (an option of the statement: Connection.execution_options would change the connection)
    result = connection.execute(_select_in_key_order(table).execution_options(yield_per=CHUNK_ROWS))
    for partition in result.partitions():
        yield from partition


def table_checksum(connection: sa.Connection, table: sa.Table) -> str:
    """Order-independent checksum of every row of the table (see `Checksum`)."""
    checksum = Checksum()
    for row in _stream(connection, table):
        checksum.add(row)
    return checksum.hexdigest


# --- write ------------------------------------------------------------------------------------


def write_table(connection: sa.Connection, table: sa.Table, path: UPath) -> WrittenTable:
    """Write every row of `table` to an AVRO file at `path` (local or S3), schema embedded.

    Rows stream in key order through a local temporary file, which is then moved (local) or
    uploaded in one piece (S3): a failed write never leaves a truncated file behind.
    """
    schema = fastavro.parse_schema(avro_schema(table))
    checksum = Checksum()
    to_record = _converter(list(table.columns), [_to_avro(c) for c in table.columns])

    def records() -> Iterator[dict[str, Any]]:
        for row in _stream(connection, table):
            checksum.add(row)
            yield to_record(row)

    local = _is_local(path)
    if local:
        path.parent.mkdir(parents=True, exist_ok=True)
    folder = str(path.parent) if local else None
    handle, temporary = tempfile.mkstemp(prefix=f".{table.name}.", suffix=".avro.tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as output:
            fastavro.writer(output, schema, records(), codec=CODEC, metadata={"etl.table": table.name})
        size = os.path.getsize(temporary)
        if local:
            os.replace(temporary, str(path))
        else:
            path.fs.put_file(temporary, path.path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return WrittenTable(
        table=table.name, path=str(path), rows=checksum.rows, bytes=size, checksum=checksum.hexdigest
    )


def _is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


# --- read and restore -------------------------------------------------------------------------


def read_schema(path: UPath) -> dict[str, Any]:
    """The schema embedded in an AVRO file."""
    with path.open("rb") as handle:
        return fastavro.reader(handle).writer_schema


def read_rows(path: UPath, reader_schema: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The records of an AVRO file, one dict per row, streamed.

    Logical types come back as Python values (timestamps as UTC-aware datetimes, decimals as
    `Decimal`); with `reader_schema`, AVRO schema resolution adapts older files to it.
    """
    with path.open("rb") as handle:
        yield from fastavro.reader(handle, reader_schema=reader_schema)


def restore_table(connection: sa.Connection, table: sa.Table, path: UPath) -> int:
    """Replace every row of `table` with the rows of the file, in the caller's transaction.

    Returns the number of rows inserted. Tables linked by foreign keys are restored together
    with `restore_tables`, which deletes and inserts in a safe order.
    """
    inserted = replace(connection, table, _rows_for(connection, table, path)).inserted
    _advance_sequences(connection, table)
    return inserted


def restore_tables(connection: sa.Connection, files: Sequence[tuple[sa.Table, UPath]]) -> dict[str, int]:
    """Restore several tables in the caller's transaction; `files` is in load order
    (referenced tables first). Rows are deleted in reverse order, then inserted in order."""
    for table, _ in reversed(files):
        try:
            connection.execute(table.delete())
        except sa.exc.DBAPIError as error:
            raise AvroTableError(f"cannot empty table {table.name} before restoring it: {error.orig}") from error
    restored = {}
    for table, path in files:
        try:
            restored[table.name] = append(connection, table, _rows_for(connection, table, path)).inserted
            _advance_sequences(connection, table)
        except AvroTableError:
            raise
        except Exception as error:
            reason = error.orig if isinstance(error, sa.exc.DBAPIError) else error
            raise AvroTableError(f"cannot restore table {table.name} from {path}: {reason}") from error
    return restored


def _rows_for(connection: sa.Connection, table: sa.Table, path: UPath) -> Iterator[dict[str, Any]]:
    """The file's rows as `table` takes them (checked to fit before any is read), streamed."""
    written = read_schema(path)
    _check_fits(table, written, path)
    # Resolve the file against the table as it is now; the record keeps the file's name.
    reader = {**avro_schema(table), "name": written["name"]}
    reader.pop("namespace", None)
    columns = list(table.columns)
    convert = _converter(columns, [_from_avro(c, connection.dialect.name) for c in columns])
    names = [c.name for c in columns]
    return (convert([record[name] for name in names]) for record in read_rows(path, reader))


def _check_fits(table: sa.Table, written: dict[str, Any], path: UPath) -> None:
    """A file restores into a table if every required column is in it (extra ones are dropped)."""
    in_file = {field["name"] for field in written.get("fields", [])}
    missing = [c.name for c in table.columns if c.name not in in_file and not c.nullable]
    if missing:
        raise AvroTableError(
            f"{path} cannot restore table {table.name}: required columns {missing} are not in the file"
        )


def _advance_sequences(connection: sa.Connection, table: sa.Table) -> None:
    """Rows restored with their ids must not collide with the next generated id (Postgres)."""
    if connection.dialect.name != "postgresql":
        return  # SQLite takes the next id after the highest stored one
    preparer = connection.dialect.identifier_preparer
    for column in table.primary_key.columns:
        if not isinstance(column.type, sa.Integer) or column.autoincrement is False:
            continue
        restored = sa.select(sa.func.max(column).label("max_id")).subquery("restored")
        connection.execute(
            sa.select(
                sa.func.setval(
                    sa.func.pg_get_serial_sequence(preparer.format_table(table), column.name),
                    sa.func.coalesce(restored.c.max_id, 1),
                    restored.c.max_id.is_not(None),
                )
            ).select_from(restored)
        )
