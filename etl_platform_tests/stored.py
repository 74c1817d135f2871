"""What a test's warehouse holds: rows by SQL, whole tables, row counts, the quarantine.

Read through the platform's own engines (`engine_for`), as the code under test writes.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from etl_platform.lib.warehouse import engine_for


def rows(url: str, query: str, **params) -> list[tuple]:
    """The rows of a SQL query, as tuples."""
    with engine_for(url).connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(query), params).all()]


def row_dicts(url: str, query: str, **params) -> list[dict]:
    """The rows of a SQL query, as column -> value."""
    with engine_for(url).connect() as connection:
        return [dict(row) for row in connection.execute(sa.text(query), params).mappings()]


def table_rows(url: str, table: sa.Table) -> list[dict]:
    """Every row of a declared table in key order, its values typed as the table declares them."""
    with engine_for(url).connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(table).order_by(*table.primary_key)).mappings()]


def count(url: str, table: str, where: str = "") -> int:
    """Rows of `table` (those matching a `WHERE ...` clause, if given)."""
    with engine_for(url).connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one()


def table_counts(url: str, tables: Iterable[str]) -> dict[str, int]:
    """Table -> rows, for those of `tables` that exist."""
    with engine_for(url).connect() as connection:
        existing = set(sa.inspect(connection).get_table_names())
    return {name: count(url, name) for name in tables if name in existing}


def quarantined(url: str) -> list[dict]:
    """Every row of `quarantine` (none when no run ever created the table), oldest first."""
    with engine_for(url).connect() as connection:
        if not sa.inspect(connection).has_table("quarantine"):
            return []
        return [dict(row) for row in connection.execute(sa.text("SELECT * FROM quarantine ORDER BY id")).mappings()]
