"""Assets of the `ops` group."""

from datetime import timedelta

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from etl_platform.lib.retention import delete_older_than
from etl_platform.lib.storage import StorageResource

RAW_DOMAINS = ("cve", "commerce", "sales")


class RawRetentionConfig(Config):
    keep_days: int = Field(default=2, ge=0, description="raw files written longer ago than this are deleted")


@asset(
    key=["ops", "retention", "raw_files"],
    group_name="ops",
    kinds={"python"},
    owners=["team:data-platform"],
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
