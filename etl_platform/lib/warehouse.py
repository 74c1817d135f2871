"""The warehouse: a SQLAlchemy engine on Postgres (psycopg 3) or SQLite, as a Dagster resource.

Each domain declares the `MetaData` of its tables here once (`declare`); the resource creates
every declared table the first time it is used on a database, so assets, ops and sensors only
open transactions (`WarehouseResource.begin`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL and process."""
    url = normalise_url(url)
    with _engines_lock:
        if url not in _engines:
            _engines[url] = _create_engine(url)
        return _engines[url]


def dispose_engines() -> None:
    """Close every pooled connection (before dropping a database, or at shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
    with _created_lock:
        _created.clear()  # a database dropped and made again under the same URL starts empty


def _create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while a partition loads; the writer waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def is_postgres(connection: sa.Connection | sa.Engine) -> bool:
    return connection.dialect.name == "postgresql"


def quoted_table(connection: sa.Connection, table: sa.Table) -> str:
    """The table's name as SQL text: quoted where needed, with its schema if it has one."""
    return connection.dialect.identifier_preparer.format_table(table)


def add_missing_columns(connection: sa.Connection, metadata: sa.MetaData) -> list[str]:
    """`ALTER TABLE ... ADD COLUMN` for each declared nullable column a stored table lacks."""
    inspector = sa.inspect(connection)
    added = []
    for table in metadata.sorted_tables:
        stored = {column["name"] for column in inspector.get_columns(table.name, schema=table.schema)}
        for column in table.columns:
            if column.name not in stored and column.nullable:
                ddl = sa.schema.CreateColumn(column).compile(dialect=connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {quoted_table(connection, table)} ADD COLUMN {ddl}")
                added.append(f"{table.name}.{column.name}")
    return added


_declared: list[sa.MetaData] = []
_created: set[tuple[str, int]] = set()  # (URL, id of a declared MetaData) created in this process
_created_lock = threading.Lock()
CREATE_TABLES_LOCK = 0x65746C5F617069  # any constant key, the same in every process


def declare(metadata: sa.MetaData) -> sa.MetaData:
    """Register the tables of a domain, to be created on every warehouse this process uses."""
    if not any(known is metadata for known in _declared):
        _declared.append(metadata)
    return metadata


def create_tables(engine: sa.Engine, metadatas: Sequence[sa.MetaData] | None = None) -> None:
    """Create the missing tables of `metadatas` (default: every declared one) and add the nullable
    columns a table declares that an older warehouse lacks (a release adding a column).

    On Postgres under an advisory lock, so that processes starting together on an empty
    warehouse (run workers, `uvicorn --workers N`) do not race; the DDL commits as one.
    """
    with engine.begin() as connection:
        if is_postgres(connection):
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(CREATE_TABLES_LOCK)))
        for metadata in _declared if metadatas is None else metadatas:
            metadata.create_all(connection, checkfirst=True)
            add_missing_columns(connection, metadata)


def _create_declared_once(engine: sa.Engine) -> None:
    """`create_tables` of the declared tables not yet created on this engine's database."""
    url = engine.url.render_as_string(hide_password=False)
    if all((url, id(metadata)) in _created for metadata in _declared):
        return
    with _created_lock:
        missing = [metadata for metadata in _declared if (url, id(metadata)) not in _created]
        if missing:
            create_tables(engine, missing)
            _created.update((url, id(metadata)) for metadata in missing)


class WarehouseResource(ConfigurableResource):
    """The warehouse database."""

    url: str = Field(description="SQLAlchemy URL (ETL_WAREHOUSE_URL; default SQLite under $ETL_HOME)")

    def resolved_url(self) -> str:
        return normalise_url(self.url)

    @property
    def engine(self) -> sa.Engine:
        """The pooled engine, every declared table created (once per process and database)."""
        engine = engine_for(self.resolved_url())
        _create_declared_once(engine)
        return engine

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self.engine.begin() as connection:
            yield connection

    def redacted_url(self) -> str:
        """The URL with any password masked, for metadata and logs."""
        return sa.make_url(self.resolved_url()).render_as_string(hide_password=True)
