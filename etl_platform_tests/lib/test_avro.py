"""Tables to AVRO and back: the schema mapping, exact round trips, the checksum, restore rules."""

import datetime as dt
import uuid
from decimal import Decimal

import fastavro
import pytest
import sqlalchemy as sa
from upath import UPath

from etl_platform.lib import avro
from etl_platform.lib.warehouse import engine_for

UTC = dt.timezone.utc

metadata = sa.MetaData()
kinds = sa.Table(
    "kinds",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("flag", sa.Boolean),
    sa.Column("ratio", sa.Float),
    sa.Column("price", sa.Numeric(12, 2), comment="money"),
    sa.Column("exact", sa.Numeric),
    sa.Column("label", sa.Text),
    sa.Column("tag", sa.String(20), nullable=False),
    sa.Column("doc", sa.JSON),
    sa.Column("ref", sa.Uuid),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("local_at", sa.DateTime),
    sa.Column("day", sa.Date),
    sa.Column("clock", sa.Time),
    sa.Column("blob", sa.LargeBinary),
    comment="One column of every supported kind.",
)
serial = sa.Table(
    "serial",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("note", sa.Text, nullable=False),
)

ROWS = [
    {
        "id": 1,
        "flag": True,
        "ratio": 0.1,
        "price": Decimal("12.30"),
        "exact": Decimal("3.14159"),
        "label": "Zoë Ångström — 数据 ✓",
        "tag": "a",
        "doc": {"nested": [1, "two", None]},
        "ref": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "at": dt.datetime(2021, 7, 27, 16, 2, 8, 123456, tzinfo=UTC),
        "local_at": dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
        "day": dt.date(2021, 1, 2),
        "clock": dt.time(1, 2, 3, 4),
        "blob": b"\x00\xff\x10",
    },
    {"id": 2, "tag": "nulls", **{c.name: None for c in kinds.columns if c.name not in ("id", "tag")}},
    {
        "id": 3,
        "flag": False,
        "ratio": -1e300,
        "price": Decimal("-0.01"),
        "exact": Decimal("100"),
        "label": "",
        "tag": "O'Brien, \"Jr\"\n\ttab",
        "doc": [],
        "ref": uuid.UUID(int=0),
        "at": dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "local_at": dt.datetime(2030, 1, 1, 0, 0, 0, 1),
        "day": dt.date(1900, 1, 1),
        "clock": dt.time(23, 59, 59, 999999),
        "blob": b"",
    },
]


TIMESTAMP = {"type": "long", "logicalType": "timestamp-micros"}


def copy_without(table: sa.Table, column: str) -> sa.Table:
    """The table as it was before `column` was added."""
    return sa.Table(
        table.name, sa.MetaData(), *(sa.Column(c.name, c.type, nullable=c.nullable) for c in table.columns if c.name != column)
    )


def all_rows(connection: sa.Connection, table: sa.Table) -> list[tuple]:
    return [tuple(row) for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))]


@pytest.fixture
def engine(any_warehouse_url) -> sa.Engine:
    engine = engine_for(any_warehouse_url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(kinds.insert(), ROWS)
    return engine


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (sa.Column("x", sa.Integer, nullable=False), "long"),
        (sa.Column("x", sa.BigInteger, nullable=False), "long"),
        (sa.Column("x", sa.SmallInteger, nullable=False), "long"),
        (sa.Column("x", sa.Boolean, nullable=False), "boolean"),
        (sa.Column("x", sa.Float, nullable=False), "double"),
        (sa.Column("x", sa.Text, nullable=False), "string"),
        (sa.Column("x", sa.String(5), nullable=False), "string"),
        (sa.Column("x", sa.Enum("a", "b", name="ab"), nullable=False), "string"),
        (sa.Column("x", sa.JSON, nullable=False), "string"),
        (sa.Column("x", sa.Numeric, nullable=False), "string"),
        (
            sa.Column("x", sa.Numeric(12, 2), nullable=False),
            {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
        ),
        (sa.Column("x", sa.DateTime(timezone=True), nullable=False), TIMESTAMP),
        (sa.Column("x", sa.DateTime, nullable=False), TIMESTAMP),
        (sa.Column("x", sa.Date, nullable=False), {"type": "int", "logicalType": "date"}),
        (sa.Column("x", sa.Time, nullable=False), {"type": "long", "logicalType": "time-micros"}),
        (sa.Column("x", sa.Uuid, nullable=False), {"type": "string", "logicalType": "uuid"}),
        (sa.Column("x", sa.LargeBinary, nullable=False), "bytes"),
        (sa.Column("x", sa.Integer, nullable=True), ["null", "long"]),
    ],
)
def test_each_sql_type_maps_to_its_avro_type(column, expected):
    schema = avro.avro_schema(sa.Table("t", sa.MetaData(), column))

    assert schema["fields"][0]["type"] == expected


def test_the_schema_names_the_table_and_carries_comments_as_docs():
    schema = avro.avro_schema(kinds)

    assert schema["name"] == "kinds"
    assert schema["doc"] == "One column of every supported kind."
    price = next(field for field in schema["fields"] if field["name"] == "price")
    assert price["doc"] == "money"
    assert price["default"] is None
    assert [field["name"] for field in schema["fields"]] == [c.name for c in kinds.columns]
    fastavro.parse_schema(schema)


def test_a_type_without_mapping_or_a_name_avro_refuses_is_a_clear_error():
    with pytest.raises(avro.AvroTableError, match=r"t\.span .*no AVRO mapping"):
        avro.avro_schema(sa.Table("t", sa.MetaData(), sa.Column("span", sa.Interval)))
    with pytest.raises(avro.AvroTableError, match="not a valid AVRO name"):
        avro.avro_schema(sa.Table("t", sa.MetaData(), sa.Column("a-b", sa.Integer)))


def test_a_table_round_trips_exactly(engine, tmp_path):
    path = UPath(tmp_path) / "day" / "kinds.avro"
    with engine.begin() as connection:
        before = all_rows(connection, kinds)
        written = avro.write_table(connection, kinds, path)
        connection.execute(kinds.delete())

    with engine.begin() as connection:
        restored = avro.restore_table(connection, kinds, path)

    with engine.connect() as connection:
        after = all_rows(connection, kinds)
        checksum = avro.table_checksum(connection, kinds)
    assert restored == written.rows == 3
    assert after == before
    assert checksum == written.checksum
    assert written.bytes == path.stat().st_size
    assert [path.name] == [p.name for p in path.parent.iterdir()]  # no temporary file left


def test_the_file_embeds_its_schema_and_holds_the_values(engine, tmp_path):
    path = UPath(tmp_path) / "kinds.avro"
    with engine.begin() as connection:
        avro.write_table(connection, kinds, path)

    records = list(avro.read_rows(path))

    assert avro.read_schema(path)["doc"] == "One column of every supported kind."
    assert [r["id"] for r in records] == [1, 2, 3]
    assert records[0]["at"] == ROWS[0]["at"]
    assert records[0]["local_at"] == ROWS[0]["local_at"].replace(tzinfo=UTC)
    assert records[0]["price"] == Decimal("12.30")
    assert records[0]["label"] == ROWS[0]["label"]
    assert records[1] == ROWS[1]
    assert records[2]["label"] == ""


def test_the_checksum_is_the_same_on_postgres_and_sqlite(postgres_url, sqlite_url):
    checksums = []
    for url in (postgres_url, sqlite_url):
        engine = engine_for(url)
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(kinds.insert(), list(reversed(ROWS)))
            checksums.append(avro.table_checksum(connection, kinds))

    assert checksums[0] == checksums[1]


@pytest.mark.parametrize(
    "change",
    [
        {"label": None},  # null is not the empty string
        {"at": ROWS[2]["at"] + dt.timedelta(microseconds=1)},
        {"price": Decimal("-0.02")},
        {"tag": "O'Brien"},
    ],
)
def test_the_checksum_sees_every_change_but_not_row_order(sqlite_url, change):
    engine = engine_for(sqlite_url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(kinds.insert(), ROWS)
        original = avro.table_checksum(connection, kinds)
        connection.execute(kinds.delete())
        connection.execute(kinds.insert(), list(reversed(ROWS)))
        reordered = avro.table_checksum(connection, kinds)
        connection.execute(kinds.update().where(kinds.c.id == 3).values(**change))
        changed = avro.table_checksum(connection, kinds)

    assert original == reordered
    assert changed != original


def test_a_restore_replaces_rows_and_is_undone_with_the_callers_transaction(engine, tmp_path):
    path = UPath(tmp_path) / "kinds.avro"
    with engine.begin() as connection:
        avro.write_table(connection, kinds, path)
        connection.execute(kinds.insert(), [{"id": 9, "tag": "added later"}])
        before = all_rows(connection, kinds)

    with pytest.raises(RuntimeError), engine.begin() as connection:
        avro.restore_table(connection, kinds, path)
        assert [row[0] for row in all_rows(connection, kinds)] == [1, 2, 3]
        raise RuntimeError("the caller changes its mind")

    with engine.connect() as connection:
        assert all_rows(connection, kinds) == before


def test_an_older_file_without_a_nullable_column_restores_it_as_null(engine, tmp_path):
    path = UPath(tmp_path) / "kinds.avro"
    older = copy_without(kinds, "label")
    with engine.begin() as connection:
        avro.write_table(connection, older, path)
        avro.restore_table(connection, kinds, path)
        labels = connection.execute(sa.select(kinds.c.label).order_by(kinds.c.id)).scalars().all()

    assert labels == [None, None, None]


def test_a_file_missing_a_required_column_does_not_restore(engine, tmp_path):
    path = UPath(tmp_path) / "kinds.avro"
    older = copy_without(kinds, "tag")
    with engine.begin() as connection:
        avro.write_table(connection, older, path)

    with pytest.raises(avro.AvroTableError, match=r"required columns \['tag'\]"), engine.begin() as connection:
        avro.restore_table(connection, kinds, path)


def test_a_failed_write_leaves_no_file(engine, tmp_path):
    path = UPath(tmp_path) / "backups" / "kinds.avro"
    narrow = sa.Table(
        "kinds", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("price", sa.Numeric(2, 1))
    )

    with pytest.raises(ValueError), engine.begin() as connection:
        avro.write_table(connection, narrow, path)  # 12.30 does not fit numeric(2, 1)

    assert list(path.parent.iterdir()) == []


def test_restored_ids_do_not_collide_with_the_next_generated_one(any_warehouse_url, tmp_path):
    engine = engine_for(any_warehouse_url)
    metadata.create_all(engine)
    path = UPath(tmp_path) / "serial.avro"
    with engine.begin() as connection:
        connection.execute(serial.insert(), [{"note": "one"}, {"note": "two"}])
        avro.write_table(connection, serial, path)
        connection.execute(serial.delete())
    with engine.begin() as connection:
        # A fresh table: its sequence would start at 1 again.
        serial.drop(connection)
        serial.create(connection)
        avro.restore_table(connection, serial, path)

    with engine.begin() as connection:
        new_id = connection.execute(serial.insert().values(note="three").returning(serial.c.id)).scalar_one()
    assert new_id == 3


def test_tables_restore_together_in_load_order(any_warehouse_url, tmp_path):
    linked = sa.MetaData()
    parent = sa.Table("parent", linked, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    child = sa.Table(
        "child",
        linked,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id"), nullable=False),
    )
    engine = engine_for(any_warehouse_url)
    linked.create_all(engine)
    with engine.begin() as connection:
        connection.execute(parent.insert(), [{"id": 1}, {"id": 2}])
        connection.execute(child.insert(), [{"id": 10, "parent_id": 1}, {"id": 20, "parent_id": 2}])
        files = [(table, UPath(tmp_path) / f"{table.name}.avro") for table in (parent, child)]
        for table, path in files:
            avro.write_table(connection, table, path)

    with engine.begin() as connection:
        restored = avro.restore_tables(connection, files)

    assert restored == {"parent": 2, "child": 2}
