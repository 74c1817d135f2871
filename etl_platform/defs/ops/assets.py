"""Assets of the `ops` group: the raw files' retention, the HR tables' daily backup, the ECB rate history."""

from datetime import timedelta

from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from etl_platform.defs.commerce.parse import parse_eurofxref_history
from etl_platform.defs.commerce.resources import EcbResource
from etl_platform.defs.commerce.schemas import FxRateModel

from etl_platform.defs.hr.keys import REJECTIONS_KEY, TABLE_KEYS
from etl_platform.defs.ops.backup import BACKED_UP, backup_folder, snapshot
from etl_platform.defs.ops.keys import BACKUP_KEY, FX_HISTORY, FX_HISTORY_FILE, GROUP, RETENTION_KEY
from etl_platform.defs.ops.partitions import backup_daily
from etl_platform.lib.avro import write_table
from etl_platform.lib.frame_checks import schema_check
from etl_platform.lib.retention import delete_older_than
from etl_platform.lib.storage import StorageResource, write_bytes
from etl_platform.lib.typed_frames import typed_frame
from etl_platform.lib.warehouse import WarehouseResource

RAW_DOMAINS = ("cve", "commerce", "sales")


# --- retention -------------------------------------------------------------------------

class RawRetentionConfig(Config):
    keep_days: int = Field(default=2, ge=0, description="raw files written longer ago than this are deleted")


@asset(
    key=RETENTION_KEY,
    group_name=GROUP,
    kinds={"python"},
    description=(
        "Deletes raw JSON files written more than `keep_days` (default 2) days ago from every "
        "domain's raw layer. Clean, diff and warehouse layers are kept; a deleted raw day is "
        "fetched again if its partition is re-materialized."
    ),
)
def raw_retention(context: AssetExecutionContext, config: RawRetentionConfig, storage: StorageResource):
    root = storage.root()
    deleted, kept, freed = 0, 0, 0
    for domain in RAW_DOMAINS:
        sweep = delete_older_than(root / domain / "raw", timedelta(days=config.keep_days))
        deleted, kept, freed = deleted + len(sweep.deleted), kept + sweep.kept, freed + sweep.bytes_freed
        context.log.info(f"{domain}: deleted {len(sweep.deleted)} raw file(s), kept {sweep.kept}")
    return MaterializeResult(
        metadata={
            "files_deleted": deleted,
            "files_kept": kept,
            "bytes_freed": MetadataValue.int(freed),
            "keep_days": config.keep_days,
        }
    )


# --- backup ----------------------------------------------------------------------------

@asset(
    key=BACKUP_KEY,
    group_name=GROUP,
    partitions_def=backup_daily,
    deps=[*TABLE_KEYS.values(), REJECTIONS_KEY],
    kinds={"avro", "sqlalchemy"},
    description=(
        "Backup of every HR table (departments, jobs, hired_employees, ingest_rejections) as "
        "AVRO files with the schema embedded, one per table, under "
        "`<ETL_STORAGE_URL>/ops/backup/hr_tables/<day>/<table>.avro`, taken in one consistent "
        "snapshot. Rows, bytes, paths and checksums per table are recorded here; the "
        "`restores_exactly` check proves the files restore, the `hr_restore` job restores them."
    ),
)
def hr_tables_backup(
    context: AssetExecutionContext, storage: StorageResource, warehouse: WarehouseResource
) -> MaterializeResult:
    day = context.partition_key
    folder = backup_folder(storage.root(), day)
    with snapshot(warehouse.engine) as connection:
        written = [write_table(connection, table, folder / f"{name}.avro") for name, table in BACKED_UP.items()]
    metadata: dict = {
        "dagster/row_count": sum(item.rows for item in written),
        "folder": MetadataValue.path(str(folder)),
        "tables": MetadataValue.json([item.table for item in written]),
    }
    for item in written:
        context.log.info(f"{item.table}: {item.rows} row(s), {item.bytes} bytes -> {item.path}")
        metadata.update(
            {
                f"{item.table}/rows": MetadataValue.int(item.rows),
                f"{item.table}/bytes": MetadataValue.int(item.bytes),
                f"{item.table}/checksum": MetadataValue.text(item.checksum),
                f"{item.table}/path": MetadataValue.path(item.path),
            }
        )
    return MaterializeResult(metadata=metadata)


# --- ECB rate history --------------------------------------------------------------------

@asset(
    key=FX_HISTORY,
    group_name=GROUP,
    kinds={"zip", "python"},
    description=(
        "The ECB's full reference-rate history (eurofxref-hist, every currency since 1999-01-04), "
        "fetched in one request and kept as sent under ops/history/fx_rates/. commerce/raw/fx_rates "
        "takes a day it covers from it instead of asking the data API: a year of commerce backfill "
        "then needs no rate request per day. Nothing is written to the warehouse here: "
        "commerce/tables/fx_rate is the only writer of fx_rate."
    ),
)
def fx_rate_history(context: AssetExecutionContext, ecb: EcbResource, storage: StorageResource):
    client = ecb.client(context.log)
    data = client.history()
    rates = typed_frame(parse_eurofxref_history(data), FxRateModel)
    check = schema_check(FX_HISTORY, FxRateModel, rates)
    if not check.passed:
        raise Failure(description="the eurofxref history does not satisfy FxRateModel", metadata=check.metadata)
    # Kept only once it reads: the commerce days it covers take their rates from it.
    path = storage.root().joinpath(*FX_HISTORY.path, FX_HISTORY_FILE)
    write_bytes(path, data)
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(rates),
            "currencies": int(rates["quote"].nunique()),
            "first_day": str(min(rates["rate_date"])) if len(rates) else "",
            "last_day": str(max(rates["rate_date"])) if len(rates) else "",
            "source": MetadataValue.url(client.history_url),
            "path": MetadataValue.path(str(path)),
        }
    )
