"""Warehouse tables as Dagster assets: the spec of a table asset and the column schema the UI shows."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from dagster import AssetDep, AssetKey, AssetSpec, TableColumn, TableSchema

from etl_platform.lib import settings


def table_kinds(*kinds: str) -> set[str]:
    """`sql` and the warehouse's engine (`sqlite` or `postgres`, from `ETL_WAREHOUSE_URL` as the
    definitions load), plus `kinds`: the kinds of an asset that is, or writes, a warehouse table."""
    return {"sql", settings.warehouse_kind(), *kinds}


def column_schema(table: sa.Table) -> TableSchema:
    """The table's columns with their SQL types and comments, as the asset page lists them."""
    return TableSchema(
        columns=[TableColumn(c.name, str(c.type), description=c.comment or "") for c in table.columns]
    )


def table_metadata(table: sa.Table) -> dict:
    """Definition metadata naming the table an asset is, and its columns."""
    return {"dagster/table_name": table.name, "dagster/column_schema": column_schema(table)}


def table_spec(
    key: AssetKey, table: sa.Table, *, group: str, deps: Sequence[AssetKey | AssetDep], description: str
) -> AssetSpec:
    """The spec of an asset that is a warehouse table, for a multi-asset that loads several at once."""
    return AssetSpec(
        key=key,
        deps=deps,
        group_name=group,
        kinds=table_kinds(),
        description=description,
        metadata=table_metadata(table),
    )
