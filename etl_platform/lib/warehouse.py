"""The warehouse: a SQLAlchemy engine on Postgres (psycopg 3) or SQLite, as a Dagster resource."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dagster import ConfigurableResource

from etl_platform.lib import settings


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


class WarehouseResource(ConfigurableResource):
    """The warehouse database (`ETL_WAREHOUSE_URL`; SQLite under `ETL_HOME` when unset)."""

    url: str | None = None

    def resolved_url(self) -> str:
        return normalise_url(self.url or settings.warehouse_url())

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.resolved_url())

    def ensure_tables(self, metadata: sa.MetaData) -> None:
        """Create the tables and indexes of `metadata` that do not exist yet, and add the nullable
        columns a table declares that an older warehouse lacks (a release adding a column)."""
        metadata.create_all(self.engine, checkfirst=True)
        with self.engine.begin() as connection:
            add_missing_columns(connection, metadata)

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self.engine.begin() as connection:
            yield connection

    def redacted_url(self) -> str:
        """The URL with any password masked, for metadata and logs."""
        return sa.make_url(self.resolved_url()).render_as_string(hide_password=True)
