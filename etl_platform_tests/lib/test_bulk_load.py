"""Bulk loading: what goes in through COPY (binary or CSV) comes out unchanged."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from etl_platform.lib import bulk_load
from etl_platform.lib.bulk_load import binary_schema, load_rows
from etl_platform.lib.warehouse import engine_for

metadata = sa.MetaData()
every_type = sa.Table(
    "every_type",
    metadata,
    sa.Column("id", sa.Integer),
    sa.Column("big", sa.BigInteger),
    sa.Column("small", sa.SmallInteger),
    sa.Column("text", sa.Text),
    sa.Column("name", sa.String(40)),
    sa.Column("flag", sa.Boolean),
    sa.Column("score", sa.Float),
    sa.Column("money", sa.Numeric(12, 2)),
    sa.Column("day", sa.Date),
    sa.Column("at_utc", sa.DateTime(timezone=True)),
    sa.Column("wall_clock", sa.DateTime),
)
with_json = sa.Table(
    "with_json",
    metadata,
    sa.Column("id", sa.Integer),
    sa.Column("doc", sa.JSON),
)

TEXTS = ['plain', 'comma, "quotes" and\nnewline', "", "ünïcødé ✓", None]
ROWS = pd.DataFrame(
    {
        "id": [1, 2, 3, 4, 5],
        "big": pd.array([2023 * 10**10 + 44487, -1, 0, None, 9_000_000_000_000_000_000], dtype="Int64"),
        "small": pd.array([1, -2, None, 3, 32767], dtype="Int16"),
        "text": pd.array(TEXTS, dtype=pd.StringDtype("pyarrow")),
        "name": TEXTS,
        "flag": pd.array([True, False, None, True, False], dtype="boolean"),
        "score": [9.8, 0.1, float("nan"), -1.5, 1e-9],
        "money": [Decimal("19.99"), Decimal("0.00"), None, Decimal("-1234567890.12"), Decimal("0.05")],
        "day": [date(2021, 11, 3), date(1999, 1, 4), None, date(2024, 2, 29), date(2000, 1, 1)],
        "at_utc": pd.to_datetime(
            ["2023-10-18T10:15:00.123456+02:00", "1999-01-01T00:00:00Z", None, "2024-06-30T23:59:59Z", "2000-01-01T00:00:00Z"],
            utc=True,
            format="ISO8601",
        ),
        "wall_clock": pd.to_datetime(["2021-01-01 08:00", "2021-12-31 23:59:59.5", None, "2022-06-01", "2000-01-01"], format="ISO8601"),
    }
)


def arrow_schema(frame: pd.DataFrame) -> pa.Schema:
    return pa.Schema.from_pandas(frame, preserve_index=False)


@pytest.fixture
def engine(postgres_url):
    engine = engine_for(postgres_url)
    metadata.create_all(engine)
    return engine


def stored(engine, table: sa.Table) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(table).order_by(table.c.id))]


def test_every_supported_type_goes_through_binary_copy(engine, copy_formats):
    frame = ROWS.drop(columns="money")  # Decimal objects: typed per chunk, so sent as CSV (below)
    assert binary_schema(every_type, arrow_schema(frame)) is not None

    with engine.begin() as connection:
        load_rows(connection, every_type, frame)

    assert copy_formats == ["BINARY"]


@pytest.mark.parametrize(
    ("columns", "copy_format"),
    [
        pytest.param([c for c in ROWS.columns if c != "money"], "BINARY", id="binary"),
        pytest.param(list(ROWS.columns), "CSV", id="csv-for-decimal-objects"),
    ],
)
def test_binary_and_csv_copy_keep_every_value(engine, copy_formats, columns, copy_format):
    with engine.begin() as connection:
        load_rows(connection, every_type, ROWS[columns])

    rows = stored(engine, every_type)

    assert copy_formats == [copy_format]
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert [r[1] for r in rows] == [20230000044487, -1, 0, None, 9_000_000_000_000_000_000]
    assert [r[2] for r in rows] == [1, -2, None, 3, 32767]
    assert [r[3] for r in rows] == TEXTS
    assert [r[4] for r in rows] == TEXTS
    assert [r[5] for r in rows] == [True, False, None, True, False]
    assert [r[6] for r in rows] == [9.8, 0.1, None, -1.5, 1e-9]
    money = [Decimal("19.99"), Decimal("0.00"), None, Decimal("-1234567890.12"), Decimal("0.05")]
    assert [r[7] for r in rows] == (money if "money" in columns else [None] * 5)
    assert [r[8] for r in rows] == [date(2021, 11, 3), date(1999, 1, 4), None, date(2024, 2, 29), date(2000, 1, 1)]
    assert rows[0][9] == datetime(2023, 10, 18, 8, 15, 0, 123456, tzinfo=timezone.utc)
    assert rows[2][9] is None
    assert rows[1][10] == datetime(2021, 12, 31, 23, 59, 59, 500000)


def test_a_zoned_instant_lands_in_a_naive_column_as_utc_wall_clock(engine):
    frame = pd.DataFrame({"id": [1], "wall_clock": pd.to_datetime(["2023-10-18T10:15:00+02:00"], format="ISO8601")})

    with engine.begin() as connection:
        load_rows(connection, every_type, frame)

    assert stored(engine, every_type)[0][10] == datetime(2023, 10, 18, 8, 15)


def test_decimal_objects_go_through_csv_whatever_scale_each_chunk_has(engine, copy_formats, monkeypatch):
    monkeypatch.setattr(bulk_load, "COPY_CHUNK_ROWS", 1)
    frame = pd.DataFrame({"id": [1, 2, 3], "money": [Decimal("1"), Decimal("2.5"), Decimal("0.125")]})

    with engine.begin() as connection:
        load_rows(connection, every_type, frame)

    assert copy_formats == ["CSV"]
    assert [r[7] for r in stored(engine, every_type)] == [Decimal("1.00"), Decimal("2.50"), Decimal("0.13")]


def test_arrow_decimals_go_through_binary_copy_exactly(engine, copy_formats):
    money = pd.Series([Decimal("19.9"), None, Decimal("-0.1")], dtype=pd.ArrowDtype(pa.decimal128(10, 1)))
    frame = pd.DataFrame({"id": [1, 2, 3], "money": money})
    assert binary_schema(every_type, arrow_schema(frame)) is not None

    with engine.begin() as connection:
        load_rows(connection, every_type, frame)

    assert copy_formats == ["BINARY"]
    assert [r[7] for r in stored(engine, every_type)] == [Decimal("19.90"), None, Decimal("-0.10")]


def test_floats_for_a_decimal_column_go_through_csv_and_round_as_postgres_does(engine, copy_formats):
    frame = pd.DataFrame({"id": [1, 2], "money": [0.125, 10.0]})
    assert binary_schema(every_type, arrow_schema(frame)) is None

    with engine.begin() as connection:
        load_rows(connection, every_type, frame)

    assert copy_formats == ["CSV"]
    assert [r[7] for r in stored(engine, every_type)] == [Decimal("0.13"), Decimal("10.00")]


def test_a_column_without_a_binary_encoding_goes_through_csv(engine, copy_formats):
    frame = pd.DataFrame({"id": [1, 2], "doc": [json.dumps({"a": [1, 2]}), None]})
    assert binary_schema(with_json, arrow_schema(frame)) is None

    with engine.begin() as connection:
        load_rows(connection, with_json, frame)

    assert copy_formats == ["CSV"]
    assert stored(engine, with_json) == [(1, {"a": [1, 2]}), (2, None)]


def test_a_value_that_does_not_fit_its_column_fails_the_load_and_keeps_nothing(engine):
    frame = pd.DataFrame({"id": [1, 2], "small": [1, 70_000]})

    with pytest.raises(Exception, match="70000|out of range|overflow|Integer value"):
        with engine.begin() as connection:
            load_rows(connection, every_type, frame)

    assert stored(engine, every_type) == []


def test_rows_spanning_several_chunks_all_arrive(engine, monkeypatch):
    monkeypatch.setattr(bulk_load, "COPY_CHUNK_ROWS", 2)

    with engine.begin() as connection:
        load_rows(connection, every_type, ROWS)

    assert [r[0] for r in stored(engine, every_type)] == [1, 2, 3, 4, 5]
