"""Schema evolution through the generic upsert, on Postgres and SQLite."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from etl_platform.lib.schema_evolution import SchemaEvolutionError, evolve, frame_kind
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import engine_for

TABLE = sa.Table(
    "evolving",
    sa.MetaData(),
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("price", sa.Numeric, comment="money"),
    comment="a table grown from its data",
)


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def stored(url: str) -> list[tuple]:
    with engine_for(url).connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text("SELECT * FROM evolving ORDER BY code"))]


def columns_of(url: str) -> list[str]:
    with engine_for(url).connect() as connection:
        return [c["name"] for c in sa.inspect(connection).get_columns("evolving")]


def test_a_missing_table_is_created_with_its_declared_and_new_columns(any_warehouse_url):
    rows = frame(code=["a", "b"], price=[Decimal("1.5"), Decimal("2")], qty=pd.array([1, 2], dtype="Int64"))
    with engine_for(any_warehouse_url).begin() as connection:
        result = merge(connection, TABLE, rows, evolve_schema=True)

    assert result.inserted == 2 and result.added_columns == ["code", "price", "qty"]
    assert columns_of(any_warehouse_url) == ["code", "price", "qty"]
    assert [(c, float(p), q) for c, p, q in stored(any_warehouse_url)] == [("a", 1.5, 1), ("b", 2.0, 2)]


def test_a_new_column_is_added_and_reported(any_warehouse_url):
    with engine_for(any_warehouse_url).begin() as connection:
        merge(connection, TABLE, frame(code=["a"], price=[Decimal("1")]), evolve_schema=True)
    with engine_for(any_warehouse_url).begin() as connection:
        result = merge(
            connection, TABLE, frame(code=["a"], price=[Decimal("1")], note=pd.array(["x"], dtype="string")),
            evolve_schema=True,
        )

    assert result.added_columns == ["note"] and result.updated == 1
    assert result.as_metadata()["evolving/added_columns"] == "note"
    assert columns_of(any_warehouse_url) == ["code", "price", "note"]


def test_an_incompatible_type_change_is_refused_and_nothing_is_loaded(any_warehouse_url):
    with engine_for(any_warehouse_url).begin() as connection:
        merge(connection, TABLE, frame(code=["a"], qty=pd.array([1], dtype="Int64")), evolve_schema=True)

    with pytest.raises(SchemaEvolutionError, match=r"qty: the table holds integer .* new rows hold text"):
        with engine_for(any_warehouse_url).begin() as connection:
            merge(
                connection, TABLE, frame(code=["b"], qty=["many"], extra=[True]), evolve_schema=True
            )

    assert columns_of(any_warehouse_url) == ["code", "price", "qty"]  # no column added either
    assert [r[0] for r in stored(any_warehouse_url)] == ["a"]


def test_an_all_null_new_column_waits_for_a_value(any_warehouse_url):
    with engine_for(any_warehouse_url).begin() as connection:
        result = merge(connection, TABLE, frame(code=["a"], later=[None]), evolve_schema=True)

    assert "later" not in result.added_columns and "later" not in columns_of(any_warehouse_url)


def test_an_integer_column_is_widened_to_numeric_for_fractions(any_warehouse_url):
    with engine_for(any_warehouse_url).begin() as connection:
        merge(connection, TABLE, frame(code=["a"], fee=pd.array([1], dtype="Int64")), evolve_schema=True)
    with engine_for(any_warehouse_url).begin() as connection:
        result = merge(connection, TABLE, frame(code=["b"], fee=[Decimal("2.25")]), evolve_schema=True)

    assert result.widened_columns == ["fee"]
    assert [(c, float(f)) for c, _, f in stored(any_warehouse_url)] == [("a", 1.0), ("b", 2.25)]


def test_evolve_alone_adds_nothing_when_the_frame_fits(sqlite_url):
    with engine_for(sqlite_url).begin() as connection:
        evolve(connection, TABLE, frame(code=["a"], price=[Decimal("1")]))
        again = evolve(connection, TABLE, frame(code=["a"], price=[3]))  # integers fit numeric

    assert (again.created, again.added, again.widened) == (False, [], [])


@pytest.mark.parametrize(
    "values,kind",
    [
        (pd.array([1, None], dtype="Int64"), "integer"),
        ([Decimal("1.10"), None], "numeric"),
        ([1.5, None], "float"),
        ([True, None], "boolean"),
        (pd.array(["a", None], dtype="string[pyarrow]"), "text"),
        (pd.to_datetime([0], unit="ms", utc=True), "timestamp"),
        ([None, None], "null"),
        (["a", 1], "text"),
    ],
)
def test_frame_kinds(values, kind):
    assert frame_kind(pd.Series(values)) == kind
