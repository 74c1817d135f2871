"""A warehouse table as an asset: its spec names the table and lists its columns as the UI shows them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from dagster import AssetKey

from etl_platform.lib.table_assets import column_schema, table_kinds, table_metadata, table_spec

order = sa.Table(
    "order",
    sa.MetaData(),
    sa.Column("order_id", sa.BigInteger, primary_key=True, comment="the order"),
    sa.Column("note", sa.Text),
    comment="Orders.",
)


def test_the_column_schema_lists_every_column_with_its_sql_type_and_comment():
    columns = column_schema(order).columns

    assert [(c.name, c.type, c.description) for c in columns] == [
        ("order_id", "BIGINT", "the order"),
        ("note", "TEXT", ""),
    ]


def test_the_metadata_names_the_table_and_its_columns():
    assert table_metadata(order) == {"dagster/table_name": "order", "dagster/column_schema": column_schema(order)}


def test_a_table_spec_is_a_sql_asset_of_its_group_with_the_tables_metadata():
    key = AssetKey(["shop", "tables", "order"])

    spec = table_spec(key, order, group="shop", deps=[AssetKey("raw")], description="d")

    assert spec.key == key and spec.group_name == "shop" and set(spec.kinds) == table_kinds() and spec.description == "d"
    assert [dep.asset_key for dep in spec.deps] == [AssetKey("raw")]
    assert spec.metadata == table_metadata(order)


@pytest.mark.parametrize(
    "url, kind",
    [(None, "sqlite"), ("sqlite:///w.db", "sqlite"), ("postgresql://u@h/db", "postgres"), ("postgresql+psycopg://h/db", "postgres")],
)
def test_table_kinds_name_the_configured_warehouse(monkeypatch, url, kind):
    if url:
        monkeypatch.setenv("ETL_WAREHOUSE_URL", url)
    else:
        monkeypatch.delenv("ETL_WAREHOUSE_URL", raising=False)

    assert table_kinds("csv") == {"sql", kind, "csv"}
