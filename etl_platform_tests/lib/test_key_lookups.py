"""Lookups of many keys: every key is looked up, a chunk at a time, on Postgres and SQLite."""

from __future__ import annotations

import sqlalchemy as sa

from etl_platform.lib.key_lookups import KEY_CHUNK, count_in_chunks, in_chunks, select_in_chunks
from etl_platform.lib.warehouse import engine_for

metadata = sa.MetaData()
item = sa.Table("item", metadata, sa.Column("key", sa.BigInteger, primary_key=True), sa.Column("status", sa.Text))


def test_keys_come_in_chunks_of_the_given_size_in_order():
    assert [list(chunk) for chunk in in_chunks([1, 2, 3, 4, 5], size=2)] == [[1, 2], [3, 4], [5]]
    assert list(in_chunks([])) == []


def test_more_keys_than_one_chunk_are_all_selected_and_counted(any_warehouse_url):
    stored = range(0, 3 * KEY_CHUNK, 2)  # every other key of three chunks
    engine = engine_for(any_warehouse_url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(item), [{"key": key, "status": f"s{key}"} for key in stored])
        asked = range(3 * KEY_CHUNK)

        rows = select_in_chunks(connection, lambda keys: sa.select(item).where(item.c.key.in_(keys)), asked)
        count = count_in_chunks(connection, lambda keys: sa.select(sa.func.count()).where(item.c.key.in_(keys)), asked)

    assert sorted(rows) == [(key, f"s{key}") for key in stored]
    assert count == len(stored)


def test_no_keys_need_no_statement():
    def never(keys):
        raise AssertionError("no statement without keys")

    assert select_in_chunks(None, never, []) == [] and count_in_chunks(None, never, []) == 0
