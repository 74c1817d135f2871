"""File storage on local disk or S3 behind one path type, and the IO managers built on it.

`ETL_STORAGE_URL` picks the place (a folder or `s3://bucket/prefix`); everything else is the
same code. Paths follow Dagster's `UPathIOManager` layout: `<base>/<key parts>/<partition>.<ext>`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    ConfigurableResource,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
    UPathIOManager,
)
from pydantic import Field
from upath import UPath

from etl_platform.lib import settings

PREVIEW_ROWS = 5
# Arrow-backed text read back stays Arrow-backed (pandas would rebuild Python str objects).
_ARROW_TEXT = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def storage_root(url: str | None = None) -> UPath:
    """The storage base as a path, local or S3 (honouring `AWS_ENDPOINT_URL`)."""
    url = url or settings.storage_url()
    if url.startswith("s3://"):
        endpoint = settings.aws_endpoint_url()
        options: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
        return UPath(url, **options)
    return UPath(url)


def modified_at(info: dict) -> datetime:
    """Modification time from fsspec file info (local `mtime`, S3 `LastModified`); now if absent."""
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("created")
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if value is None:
        return datetime.now(timezone.utc)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def ensure_folder(path: UPath) -> None:
    """Create a folder on disk; object stores have none to create."""
    if path.protocol in ("", "file", "local"):
        path.mkdir(parents=True, exist_ok=True)


def write_bytes(path: UPath, data: bytes) -> None:
    """Write a whole file at once (an S3 object is never left half written)."""
    ensure_folder(path.parent)
    with path.open("wb") as handle:
        handle.write(data)


def table_schema_of(frame: pd.DataFrame, described: TableSchema | None = None) -> TableSchema:
    """Dagster column schema of a DataFrame, shown in the UI beside every materialization; each
    column keeps its description from `described` (the asset's declared schema) when it has one."""
    descriptions = {c.name: c.description for c in described.columns} if described else {}
    return TableSchema(
        columns=[
            TableColumn(name=str(c), type=str(t), description=descriptions.get(str(c)))
            for c, t in frame.dtypes.items()
        ]
    )


def frame_metadata(frame: pd.DataFrame, described: TableSchema | None = None) -> dict[str, Any]:
    """Row count, column schema (described as `described` says) and a small preview: the metadata
    every table output carries."""
    metadata: dict[str, Any] = {
        "dagster/row_count": len(frame),
        "dagster/column_schema": table_schema_of(frame, described),
    }
    if len(frame):
        metadata["preview"] = MetadataValue.md(frame.head(PREVIEW_ROWS).to_markdown(index=False))
    return metadata


class JsonIOManager(UPathIOManager):
    """Stores JSON-serialisable objects as `.json` files."""

    extension = ".json"

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        write_bytes(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        with path.open("rb") as handle:
            return json.load(handle)


class ParquetIOManager(UPathIOManager):
    """Stores DataFrames as typed `.parquet` files, with row count, schema and preview."""

    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        table = pa.Table.from_pandas(obj, preserve_index=False)
        ensure_folder(path.parent)
        with path.open("wb") as handle:
            pq.write_table(table, handle, compression="zstd")

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        with path.open("rb") as handle:
            table = pq.read_table(handle)
        frame = table.to_pandas(types_mapper=_ARROW_TEXT.get)
        # Columns written as plain Python objects come back as they were.
        written_as_object = [
            column["name"]
            for column in (table.schema.pandas_metadata or {}).get("columns", [])
            if column["numpy_type"] == "object" and column["name"] in frame.columns
            and isinstance(frame[column["name"]].dtype, pd.StringDtype)
        ]
        for name in written_as_object:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        return frame

    def get_metadata(self, context: OutputContext, obj: pd.DataFrame) -> dict[str, Any]:
        # The asset's declared column schema (e.g. from its Pandera model) describes the stored columns.
        declared = (context.definition_metadata or {}).get("dagster/column_schema")
        return frame_metadata(obj, getattr(declared, "schema", declared))


class JsonIOManagerFactory(ConfigurableIOManagerFactory):
    """JSON files under `base_url`."""

    base_url: str = Field(description="a folder or s3://bucket/prefix (ETL_STORAGE_URL; default $ETL_HOME/storage)")

    def create_io_manager(self, context) -> JsonIOManager:
        return JsonIOManager(base_path=storage_root(self.base_url))


class ParquetIOManagerFactory(ConfigurableIOManagerFactory):
    """Parquet files under `base_url`."""

    base_url: str = Field(description="a folder or s3://bucket/prefix (ETL_STORAGE_URL; default $ETL_HOME/storage)")

    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(base_path=storage_root(self.base_url))


class StorageResource(ConfigurableResource):
    """The storage base for assets that write files themselves (raw pages, backups)."""

    base_url: str = Field(description="a folder or s3://bucket/prefix (ETL_STORAGE_URL; default $ETL_HOME/storage)")

    def root(self) -> UPath:
        return storage_root(self.base_url)
