"""Replace and append beside merge, and the warehouse creating every declared table once."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from etl_platform.lib import warehouse as warehouse_lib
from etl_platform.lib.warehouse import WarehouseResource, create_tables, engine_for
from etl_platform.lib.writes import append, replace

metadata = sa.MetaData()
notes = sa.Table(
    "test_writes_note",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("extra", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


@pytest.fixture(autouse=True)
def declared(monkeypatch):
    """The test table declared for these tests only (every warehouse made later would get it)."""
    monkeypatch.setattr(warehouse_lib, "_declared", list(warehouse_lib._declared))
    warehouse_lib.declare(metadata)


def stored(url: str) -> list[tuple]:
    with engine_for(url).connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(notes.c.text, notes.c.extra).order_by(notes.c.id))]


def test_the_resource_creates_every_declared_table_on_first_use(any_warehouse_url):
    with WarehouseResource(url=any_warehouse_url).begin() as connection:
        assert sa.inspect(connection).has_table(notes.name)


def test_append_takes_a_frame_or_mappings_and_replace_deletes_first(any_warehouse_url):
    warehouse = WarehouseResource(url=any_warehouse_url)
    with warehouse.begin() as connection:
        framed = append(connection, notes, pd.DataFrame({"text": ["a", "b"]}))
        mapped = append(connection, notes, iter([{"text": "c", "extra": {"k": [1]}}]))
        nothing = append(connection, notes, [])
    assert (framed.inserted, mapped.inserted, nothing.inserted) == (2, 1, 0)
    assert stored(any_warehouse_url) == [("a", None), ("b", None), ("c", {"k": [1]})]

    with warehouse.begin() as connection:
        result = replace(connection, notes, [{"text": "d", "extra": None}])
    assert result.as_metadata() == {"test_writes_note/deleted": 3, "test_writes_note/inserted": 1}
    assert stored(any_warehouse_url) == [("d", None)]


def test_processes_creating_the_tables_together_do_not_race(postgres_url):
    # Two engines, as two processes would have: each checks, then creates, under the advisory lock.
    engines = [sa.create_engine(warehouse_lib.normalise_url(postgres_url)) for _ in range(2)]
    errors = []

    def create(engine: sa.Engine) -> None:
        try:
            create_tables(engine, [metadata])
        except Exception as error:  # noqa: BLE001 - any failure of either is the test's failure
            errors.append(error)

    threads = [threading.Thread(target=create, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert errors == []
