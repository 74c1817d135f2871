"""Asset checks of the `ops` group."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from etl_platform.defs.ops.backup import recorded_backup
from etl_platform.defs.ops.keys import BACKUP_KEY
from etl_platform.defs.ops.partitions import backup_daily
from etl_platform.defs.ops.verify import verify_backup
from etl_platform.lib.storage import StorageResource
from etl_platform.lib.warehouse import WarehouseResource

RESTORES_EXACTLY = "restores_exactly"


@asset_check(
    asset=BACKUP_KEY,
    name=RESTORES_EXACTLY,
    partitions_def=backup_daily,
    description=(
        "Restores every file of the day's backup into a scratch schema (Postgres, rolled back) "
        "or a temporary attached database (SQLite) and compares row counts and checksums with "
        "those recorded at backup time. Fails naming each table whose file is missing, "
        "unreadable, or restores to different rows."
    ),
)
def backup_restores_exactly(
    context: AssetCheckExecutionContext, storage: StorageResource, warehouse: WarehouseResource
) -> AssetCheckResult:
    day = context.partition_key
    recorded = recorded_backup(context.instance, day)
    if not recorded:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"no backup of {day} is recorded: nothing to prove",
        )
    outcomes = verify_backup(warehouse.engine, storage.root(), day, recorded)
    problems = [outcome.problem for outcome in outcomes if outcome.problem]
    metadata: dict = {"failed_tables": MetadataValue.json([o.table for o in outcomes if o.problem])}
    for outcome in outcomes:
        rows = outcome.rows if outcome.rows is not None else -1  # -1: the file did not restore
        metadata[f"{outcome.table}/rows_restored"] = MetadataValue.int(rows)
        metadata[f"{outcome.table}/checksum_restored"] = MetadataValue.text(outcome.checksum or "")
    for problem in problems:
        context.log.error(problem)
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
        description="; ".join(problems) if problems else f"{len(outcomes)} table(s) restore exactly",
    )
