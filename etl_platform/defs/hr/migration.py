"""Historic CSV migration of the `hr` group: landing place -> raw copies -> warehouse tables.

The landing place (`HR_LANDING_URL`: a folder or an `s3://` prefix, default
`$ETL_HOME/landing/hr`) receives `departments.csv`, `jobs.csv` and `hired_employees.csv`:
comma-separated, no header row, columns in table order, some fields left empty.

A run loads the files named in its config (the landing sensor names the ones that changed)
or, without config, every one the landing holds; referenced tables first, so that the ids a
hire refers to are the ids the warehouse holds once departments and jobs are loaded. Each
file is kept as landed under `<storage>/hr/raw/<stem>/` and loaded in transactions of at
most `batch_rows` (1000) rows: the valid rows of a batch are upserted with the generic
`merge` and its rejected rows logged to `ingest_rejections`, together. A corrected file
dropped again therefore updates the rows it changes and loads the rows it completes.
"""

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    multi_asset,
)
from pydantic import Field
from upath import UPath

from etl_platform.defs.hr import tables
from etl_platform.defs.hr.keys import GROUP, OWNERS, REJECTIONS_KEY, TABLE_KEYS
from etl_platform.defs.hr.rules import check_rows, log_rejections, references
from etl_platform.lib import settings
from etl_platform.lib.storage import PREVIEW_ROWS, StorageResource, modified_at, storage_root, write_bytes
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import WarehouseResource

MAX_BATCH_ROWS = 1000
# The file each table is migrated from, in load order (referenced tables first).
LANDING_FILES = {f"{name}.csv": table for name, table in tables.INGESTED.items()}
RAW_FOLDER = (GROUP, "raw")


# --- the landing place -----------------------------------------------------------------

def landing_url() -> str:
    """`HR_LANDING_URL`, or `$ETL_HOME/landing/hr` when unset."""
    return settings.env("HR_LANDING_URL") or str(settings.etl_home() / "landing" / "hr")


def landing_root(url: str | None = None) -> UPath:
    """The landing place as a path, local or S3 (honouring `AWS_ENDPOINT_URL`)."""
    return storage_root(url or landing_url())


@dataclass(frozen=True)
class LandedFile:
    """One known file of the landing place, and the version it is at."""

    name: str
    path: UPath
    version: str = field(compare=False)
    modified: datetime = field(compare=False)
    size: int = field(compare=False)


def landed_files(root: UPath) -> dict[str, LandedFile]:
    """The known files the landing holds (name -> file), in load order.

    The version is the object's ETag on S3, `mtime:size` on disk: a file dropped again with
    other content, or touched, gets a new version. Other files are ignored.
    """
    fs = root.fs
    # Listings are cached by fsspec (s3fs keeps them for the life of the process): ask afresh.
    fs.invalidate_cache(root.path)
    try:
        entries = fs.ls(root.path, detail=True)
    except FileNotFoundError:
        return {}
    found = {}
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") != "file" or name not in LANDING_FILES:
            continue
        found[name] = LandedFile(
            name=name,
            path=root / name,
            version=_version(entry),
            modified=modified_at(entry),
            size=int(entry.get("size") or 0),
        )
    return {name: found[name] for name in LANDING_FILES if name in found}


def _version(entry: Mapping[str, Any]) -> str:
    etag = entry.get("ETag") or entry.get("etag")
    if etag:
        return str(etag).strip('"')
    return f"{entry.get('mtime')}:{entry.get('size')}"



def parse_csv(data: bytes) -> list[list[str]]:
    """Rows of a headerless CSV as lists of fields (blank lines skipped, a BOM ignored)."""
    text = data.decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text, newline="")) if row and any(field.strip() for field in row)]


def raw_path(storage: UPath, landed: LandedFile, data: bytes) -> UPath:
    """Where a landed file is kept: `hr/raw/<stem>/<landed at, UTC>_<content digest>.csv`.

    The landing time orders the copies; the digest tells apart two drops within a second
    and makes keeping the same content again a no-op.
    """
    stem = landed.name.rsplit(".", 1)[0]
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()[:10]
    return storage.joinpath(*RAW_FOLDER, stem, f"{landed.modified:%Y%m%dT%H%M%SZ}_{digest}.csv")


# --- loading ---------------------------------------------------------------------------

@dataclass
class TableLoad:
    """What loading one file into one table did, for materialization metadata."""

    table: str
    source: str
    read: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    transactions: list[int] = field(default_factory=list)
    preview: pd.DataFrame | None = None


def known_ids(connection: sa.Connection, table: sa.Table) -> dict[str, set[int]]:
    """The ids the warehouse holds of every table that `table` references."""
    return {
        referenced: set(connection.execute(sa.select(tables.metadata.tables[referenced].c.id)).scalars())
        for referenced in references(table).values()
    }


def load_records(
    warehouse: WarehouseResource,
    table: sa.Table,
    records: Sequence[Sequence[Any]],
    source: str,
    batch_rows: int = MAX_BATCH_ROWS,
) -> TableLoad:
    """Check and upsert `records` in transactions of at most `batch_rows` rows each.

    A batch's valid rows are merged and its rejected rows logged in the same transaction.
    An id given twice in the file is a duplicate whichever batch it falls in.
    """
    if not 1 <= batch_rows <= MAX_BATCH_ROWS:
        raise ValueError(f"batch_rows must be 1 to {MAX_BATCH_ROWS}, got {batch_rows}")
    load = TableLoad(table=table.name, source=source, read=len(records))
    with warehouse.begin() as connection:
        referenced = known_ids(connection, table)
    taken: set[int] = set()
    for start in range(0, len(records), batch_rows):
        batch = records[start : start + batch_rows]
        with warehouse.begin() as connection:
            checked = check_rows(table, batch, referenced, taken_ids=taken)
            if len(checked.rows):
                result = merge(connection, table, checked.rows)
                load.inserted += result.inserted
                load.updated += result.updated
                load.unchanged += result.unchanged
            log_rejections(connection, table.name, checked.rejections, source)
        load.transactions.append(len(batch))
        taken.update(int(i) for i in checked.rows["id"])
        load.loaded += len(checked.rows)
        load.rejected += len(checked.rejections)
        load.reasons.update(r.reason for r in checked.rejections)
        if load.preview is None and len(checked.rows):
            load.preview = checked.rows.head(PREVIEW_ROWS)
    return load


def table_count(warehouse: WarehouseResource, table: sa.Table) -> int:
    with warehouse.begin() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def load_metadata(load: TableLoad, landed: LandedFile, kept: UPath, total_rows: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "source": landed.name,
        "source_version": landed.version,
        "raw_copy": MetadataValue.path(str(kept)),
        "rows_read": load.read,
        "rows_loaded": load.loaded,
        "rows_rejected": load.rejected,
        "inserted": load.inserted,
        "updated": load.updated,
        "unchanged": load.unchanged,
        "rejections_by_reason": MetadataValue.json(dict(load.reasons.most_common())),
        "transactions": len(load.transactions),
        "largest_transaction_rows": max(load.transactions, default=0),
        "dagster/row_count": total_rows,
    }
    if load.preview is not None:
        metadata["preview"] = MetadataValue.md(load.preview.to_markdown(index=False))
    return metadata


# --- the assets ------------------------------------------------------------------------

class MigrationConfig(Config):
    files: list[str] | None = Field(
        default=None,
        description="landing files to load, e.g. ['jobs.csv'] (default: every known file the landing holds)",
    )
    batch_rows: int = Field(
        default=MAX_BATCH_ROWS, ge=1, le=MAX_BATCH_ROWS, description="rows per transaction, at most 1000"
    )


def column_schema(table: sa.Table) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(c.name, str(c.type), description=c.comment or "") for c in table.columns]
    )


def _table_spec(table: sa.Table, description: str, **options) -> AssetSpec:
    return AssetSpec(
        key=REJECTIONS_KEY if table is tables.ingest_rejections else TABLE_KEYS[table.name],
        group_name=GROUP,
        kinds={"csv", "sql", "postgres"},
        owners=OWNERS,
        description=description,
        metadata={"dagster/table_name": table.name, "dagster/column_schema": column_schema(table)},
        **options,
    )


_LOADED = (
    "Migrated from `{file}` of the HR landing place (`HR_LANDING_URL`), kept as landed under "
    "`hr/raw/{stem}/`, checked against the HR rules and upserted on `id` in transactions of at "
    "most 1000 rows; rejected rows go to `ingest_rejections`."
)


@multi_asset(
    name="hr_tables",
    specs=[
        _table_spec(
            table,
            f"{table.comment} " + _LOADED.format(file=file, stem=table.name),
            # Referenced tables load first, in the same step: shown as lineage.
            deps=[TABLE_KEYS[referenced] for referenced in references(table).values()],
        )
        for file, table in LANDING_FILES.items()
    ]
    + [
        _table_spec(
            tables.ingest_rejections,
            f"{tables.ingest_rejections.comment} Appended to by the CSV migration (source: the file "
            "name) and the batch ingestion API (source: `api`); materialized when a migration run "
            "rejects rows.",
            skippable=True,
        )
    ],
    can_subset=True,
)
def hr_tables(
    context: AssetExecutionContext, config: MigrationConfig, warehouse: WarehouseResource, storage: StorageResource
):
    """Load the landed HR files, referenced tables first; one materialization per table."""
    unknown = sorted(set(config.files or ()) - set(LANDING_FILES))
    if unknown:
        raise Failure(f"unknown landing file(s) {unknown}; known: {sorted(LANDING_FILES)}")
    root = landing_root()
    landed = landed_files(root)
    wanted = config.files if config.files is not None else list(landed)
    missing = sorted(set(wanted) - set(landed))
    if missing:
        raise Failure(f"file(s) {missing} named in the run config are not in the landing place {root}")
    warehouse.ensure_tables(tables.metadata)
    storage_base = storage.root()

    rejected: dict[str, int] = {}
    for file, table in LANDING_FILES.items():
        key = TABLE_KEYS[table.name]
        if key not in context.selected_asset_keys:
            continue
        if file not in wanted:
            # Nothing new for this table: it is reported as it stands, so that the reports
            # downstream still run (a skipped table would skip them).
            context.log.info(f"{file}: not loaded in this run, {table.name} unchanged")
            yield MaterializeResult(
                asset_key=key,
                metadata={"source": "none", "rows_read": 0, "dagster/row_count": table_count(warehouse, table)},
            )
            continue
        data = landed[file].path.read_bytes()
        kept = raw_path(storage_base, landed[file], data)
        write_bytes(kept, data)
        try:
            records = parse_csv(data)
        except (UnicodeDecodeError, csv.Error) as error:
            raise Failure(f"{file} is not a UTF-8 CSV file ({error}); kept as landed at {kept}") from error
        load = load_records(warehouse, table, records, source=file, batch_rows=config.batch_rows)
        context.log.info(
            f"{file} -> {table.name}: {load.read} read, {load.loaded} loaded "
            f"({load.inserted} new, {load.updated} updated), {load.rejected} rejected, "
            f"{len(load.transactions)} transaction(s)"
        )
        rejected[file] = load.rejected
        yield MaterializeResult(
            asset_key=key, metadata=load_metadata(load, landed[file], kept, table_count(warehouse, table))
        )

    if REJECTIONS_KEY in context.selected_asset_keys and sum(rejected.values()):
        yield MaterializeResult(
            asset_key=REJECTIONS_KEY,
            metadata={
                "rows_rejected": sum(rejected.values()),
                "rejected_by_source": MetadataValue.json({f: n for f, n in rejected.items() if n}),
                "dagster/row_count": table_count(warehouse, tables.ingest_rejections),
                "preview": MetadataValue.md(latest_rejections(warehouse).to_markdown(index=False)),
            },
        )


def latest_rejections(warehouse: WarehouseResource, limit: int = PREVIEW_ROWS) -> pd.DataFrame:
    rejections = tables.ingest_rejections
    columns = [rejections.c.table_name, rejections.c.source, rejections.c.reason, rejections.c.payload]
    with warehouse.begin() as connection:
        rows = connection.execute(sa.select(*columns).order_by(rejections.c.id.desc()).limit(limit)).all()
    return pd.DataFrame(rows, columns=[c.name for c in columns])
