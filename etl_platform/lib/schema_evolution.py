"""Schema evolution for the generic upsert: create a table from the data, add columns, never break.

`evolve(connection, table, frame)` brings the database table in line with the rows about to
be merged, the way dlt's "evolve" contract does, and only ever adds:

- the table does not exist: it is created with its declared columns (key, types, comments)
  plus a column for every other column of the frame;
- a frame column the table lacks is added (`ALTER TABLE ... ADD COLUMN`, nullable), its SQL
  type mapped from the frame's dtype (integers -> BIGINT, decimals -> NUMERIC, floats ->
  DOUBLE PRECISION, booleans, UTC timestamps, text);
- a frame column holding only nulls that the table lacks is left out: there is no type to
  give it yet, it is added when a value arrives;
- a stored integer column receiving fractional numbers is widened to NUMERIC (no value
  changes); any other change of kind (text into a number, a number into a boolean, a
  timestamp into text...) is refused with `SchemaEvolutionError` naming every offending
  column, raised before any DDL runs and before anything is loaded.

Works on Postgres and SQLite alike; the caller owns the transaction (on Postgres the DDL is
rolled back with the load if the load fails).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa


class SchemaEvolutionError(ValueError):
    """The rows do not fit the table's existing columns; nothing was changed or loaded."""


# The kinds of value a column holds; a frame column of one kind fits a table column of the same kind.
BOOLEAN, INTEGER, NUMERIC, FLOAT, TIMESTAMP, DATE, TEXT, NULL = (
    "boolean", "integer", "numeric", "float", "timestamp", "date", "text", "null"
)
SQL_TYPES: dict[str, sa.types.TypeEngine] = {
    BOOLEAN: sa.Boolean(),
    INTEGER: sa.BigInteger(),
    NUMERIC: sa.Numeric(),
    FLOAT: sa.Double(),
    TIMESTAMP: sa.DateTime(timezone=True),
    DATE: sa.Date(),
    TEXT: sa.Text(),
}
# (kind of the data, kind of the stored column) pairs that load without any change.
FITS = {
    (INTEGER, NUMERIC),
    (INTEGER, FLOAT),
    (NUMERIC, FLOAT),
    (FLOAT, NUMERIC),
    (DATE, TIMESTAMP),
}
# Stored kind -> the kind it is widened to when the data needs it (lossless).
WIDENINGS = {(NUMERIC, INTEGER): NUMERIC, (FLOAT, INTEGER): NUMERIC}


@dataclass
class Evolution:
    """What `evolve` did: the table as it now is, the columns added or widened, the frame to load."""

    table: sa.Table
    frame: pd.DataFrame
    created: bool = False
    added: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    skipped_empty: list[str] = field(default_factory=list)


def frame_kind(series: pd.Series) -> str:
    """The kind of value a frame column holds, from its dtype (object columns: from their values)."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return TIMESTAMP
    if pd.api.types.is_bool_dtype(dtype):
        return BOOLEAN
    if pd.api.types.is_integer_dtype(dtype):
        return INTEGER
    if pd.api.types.is_float_dtype(dtype):
        return FLOAT
    if isinstance(dtype, pd.StringDtype):
        return TEXT if series.notna().any() else NULL
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        arrow = dtype.pyarrow_dtype
        if pa.types.is_decimal(arrow):
            return NUMERIC
        if pa.types.is_date(arrow):
            return DATE
        return TEXT
    values = series.dropna()
    if values.empty:
        return NULL
    types = set(map(type, values))
    if types <= {bool}:
        return BOOLEAN
    if types <= {int}:
        return INTEGER
    if types <= {decimal.Decimal, int}:
        return NUMERIC
    if types <= {float, int}:
        return FLOAT
    if all(issubclass(t, pd.Timestamp) for t in types):
        return TIMESTAMP
    import datetime as dt

    if types <= {dt.date}:
        return DATE
    return TEXT


# Order matters: Boolean and Integer before the Numeric they may derive from, DateTime before Date.
_SQL_KINDS = (
    (sa.Boolean, BOOLEAN),
    (sa.Integer, INTEGER),
    (sa.Float, FLOAT),
    (sa.Numeric, NUMERIC),
    (sa.DateTime, TIMESTAMP),
    (sa.Date, DATE),
)


def sql_kind(type_: sa.types.TypeEngine) -> str:
    """The kind of value a database column holds, from its (declared or reflected) type."""
    return next((kind for sql_type, kind in _SQL_KINDS if isinstance(type_, sql_type)), TEXT)


def evolve(connection: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> Evolution:
    """Create or widen `table` so that `frame` can be merged into it; refuse incompatible types.

    `table` is the declaration (key, declared columns and their types, `info`); the returned
    `Evolution.table` is a copy with every column the database table now has, ready for
    `etl_platform.lib.upsert.merge`.
    """
    inspector = sa.inspect(connection)
    exists = inspector.has_table(table.name, schema=table.schema)
    stored = (
        {c["name"]: c["type"] for c in inspector.get_columns(table.name, schema=table.schema)}
        if exists
        else {c.name: c.type for c in table.columns}
    )
    kinds = {name: frame_kind(frame[name]) for name in frame.columns}
    new = [n for n in frame.columns if n not in stored and kinds[n] != NULL]
    empty = [n for n in frame.columns if n not in stored and kinds[n] == NULL]

    problems, widen = [], []
    for name in frame.columns:
        if name not in stored or kinds[name] == NULL:
            continue
        have, got = sql_kind(stored[name]), kinds[name]
        if have == got or (got, have) in FITS:
            continue
        if (got, have) in WIDENINGS:
            widen.append(name)
            continue
        problems.append(f"{name}: the table holds {have} ({stored[name]}), the new rows hold {got}")
    if problems:
        raise SchemaEvolutionError(
            f"incompatible type change for table {table.name}, nothing loaded: " + "; ".join(problems)
        )

    evolution = Evolution(table=table, frame=frame.drop(columns=empty) if empty else frame, skipped_empty=empty)
    if not exists:
        declared = sa.Table(
            table.name,
            sa.MetaData(),
            *(c._copy() for c in table.columns),
            *(sa.Column(n, SQL_TYPES[kinds[n]]) for n in new),
            schema=table.schema,
            comment=table.comment,
        )
        declared.create(connection)
        evolution.created = True
        evolution.added = [c.name for c in declared.columns]
    else:
        preparer = connection.dialect.identifier_preparer
        target = preparer.format_table(table)
        for name in new:
            type_sql = SQL_TYPES[kinds[name]].compile(dialect=connection.dialect)
            connection.execute(sa.text(f"ALTER TABLE {target} ADD COLUMN {preparer.quote(name)} {type_sql}"))
            evolution.added.append(name)
        if connection.dialect.name == "postgresql":  # SQLite's columns take any number as they are
            for name in widen:
                numeric = SQL_TYPES[NUMERIC].compile(dialect=connection.dialect)
                connection.execute(
                    sa.text(f"ALTER TABLE {target} ALTER COLUMN {preparer.quote(name)} TYPE {numeric}")
                )
        evolution.widened = widen
    evolution.table = _current(connection, table, kinds, widen)
    return evolution


def _current(connection: sa.Connection, table: sa.Table, kinds: dict[str, str], widened: list[str]) -> sa.Table:
    """The declared table extended with every stored column (declared ones keep their declaration)."""
    columns = []
    for reflected in sa.inspect(connection).get_columns(table.name, schema=table.schema):
        name = reflected["name"]
        if name in table.c and name not in widened:
            columns.append(table.c[name]._copy())
        elif name in widened:
            columns.append(sa.Column(name, SQL_TYPES[NUMERIC]))
        else:
            columns.append(sa.Column(name, reflected["type"]))
    return sa.Table(
        table.name,
        sa.MetaData(),
        *columns,
        schema=table.schema,
        comment=table.comment,
        info=dict(table.info),
    )
