"""Warehouse tables as Dagster assets: the spec of a table asset, the column schema the UI shows and
the table's state (total rows, a preview) each load reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from dagster import AssetDep, AssetKey, AssetSpec, MetadataValue, TableColumn, TableSchema

from etl_platform.lib import settings
from etl_platform.lib.storage import PREVIEW_ROWS

# Long text (descriptions, raw JSON) cut to this in the preview: the rows stay readable in the UI.
PREVIEW_CELL_CHARS = 60


def table_kinds(*kinds: str) -> set[str]:
    """`sql` and the warehouse's engine (`sqlite` or `postgres`, from `ETL_WAREHOUSE_URL` as the
    definitions load), plus `kinds`: the kinds of an asset that is, or writes, a warehouse table."""
    return {"sql", settings.warehouse_kind(), *kinds}


def column_schema(table: sa.Table) -> TableSchema:
    """The table's columns with their SQL types and comments, as the asset page lists them."""
    return TableSchema(
        columns=[TableColumn(c.name, str(c.type), description=c.comment or "") for c in table.columns]
    )


def model_metadata(model: type[pa.DataFrameModel]) -> dict:
    """Definition metadata of a layer checked against a Pandera model: its columns, each with the
    field's description (the Parquet IO manager carries them onto every materialization)."""
    columns = model.to_schema().columns
    return {
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name, str(c.dtype), description=c.description or "") for name, c in columns.items()]
        )
    }


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


def table_state_metadata(connection: sa.Connection, table: sa.Table) -> dict[str, Any]:
    """The whole table as a load leaves it: its total row count (`dagster/row_count`, not the run's
    rows) and a `preview` of its last rows by primary key, for the asset page."""
    count = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    metadata: dict[str, Any] = {"dagster/row_count": count}
    order = [column.desc() for column in table.primary_key.columns]
    rows = connection.execute(sa.select(table).order_by(*order).limit(PREVIEW_ROWS))
    frame = pd.DataFrame(rows.all(), columns=list(rows.keys()))
    if len(frame):
        metadata["preview"] = MetadataValue.md(frame.map(preview_cell).to_markdown(index=False))
    return metadata


def preview_cell(value: Any) -> str:
    """A value as one markdown table cell: on one line, no column separator, cut when long."""
    text = "" if value is None else " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= PREVIEW_CELL_CHARS else text[: PREVIEW_CELL_CHARS - 1] + "…"
