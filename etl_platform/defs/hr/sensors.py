"""The `hr_migration` job and the sensor that starts it when files land."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from etl_platform.defs.hr.keys import REJECTIONS_KEY, REPORT_KEYS, TABLE_KEYS
from etl_platform.defs.hr.migration import LANDING_FILES, hr_tables, landed_files, landing_root
from etl_platform.defs.hr.tables import INGESTED
from etl_platform.defs.hr.tables import metadata as hr_tables_metadata
from etl_platform.lib.warehouse import WarehouseResource

MIGRATION_OP = hr_tables.op.name
FILES_TAG = "hr/files"
VERSIONS_TAG = "hr/file_versions"

hr_migration_job = define_asset_job(
    "hr_migration",
    selection=AssetSelection.assets(*TABLE_KEYS.values(), REJECTIONS_KEY, *REPORT_KEYS.values()),
    description=(
        "Load the HR files of the landing place (`HR_LANDING_URL`) into the warehouse, "
        "referenced tables first, and refresh the hiring reports. Without run config every "
        "known file the landing holds is loaded; `ops.hr_tables.config.files` names a subset."
    ),
)


def migration_run_config(files: list[str]) -> dict:
    return {"ops": {MIGRATION_OP: {"config": {"files": files}}}}


@sensor(
    name="hr_landing_sensor",
    job=hr_migration_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches the HR landing place (`HR_LANDING_URL`) and starts `hr_migration` for the "
        "files that are new or changed (another ETag on S3, another mtime or size on disk) "
        "since it last looked; the cursor keeps each file's version, so a file is loaded once "
        "and a corrected file dropped again is loaded again."
    ),
)
def hr_landing_sensor(context: SensorEvaluationContext):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    landed = landed_files(landing_root())
    current = {name: file.version for name, file in landed.items()}
    changed = [name for name in landed if seen.get(name) != current[name]]
    if not changed:
        return SensorResult(
            skip_reason=SkipReason(f"no new or changed file among {len(landed)} landed"),
            cursor=json.dumps(current, sort_keys=True),
        )
    versions = {name: current[name] for name in changed}
    run_key = "hr_migration:" + hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:20]
    context.log.info(f"new or changed: {versions}")
    request = RunRequest(
        run_key=run_key,
        run_config=migration_run_config(changed),
        # Only the tables whose file changed, and the reports that follow them.
        asset_selection=[TABLE_KEYS[LANDING_FILES[name].name] for name in changed]
        + [REJECTIONS_KEY, *REPORT_KEYS.values()],
        tags={FILES_TAG: ",".join(changed), VERSIONS_TAG: json.dumps(versions, sort_keys=True)},
    )
    # Files removed from the landing are forgotten: dropped again, they load again.
    return SensorResult(run_requests=[request], cursor=json.dumps(current, sort_keys=True))


def table_fingerprints(connection: sa.Connection) -> dict[str, list[int]]:
    """Row count and highest id of each ingestible table: what an API insert changes."""
    return {
        name: list(connection.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(table.c.id), 0))).one())
        for name, table in INGESTED.items()
    }


@sensor(
    name="hr_api_writes_sensor",
    asset_selection=AssetSelection.assets(*REPORT_KEYS.values()),
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Refreshes the hiring reports when rows reach the HR tables outside Dagster (the batch "
        "ingestion API): it compares each table's row count and highest id with the last look."
    ),
)
def hr_api_writes_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    warehouse.ensure_tables(hr_tables_metadata)
    with warehouse.begin() as connection:
        current = table_fingerprints(connection)
    cursor = json.dumps(current, sort_keys=True)
    if context.cursor == cursor:
        return SensorResult(skip_reason=SkipReason("the HR tables have not changed"), cursor=cursor)
    if context.cursor is None and not any(count for count, _ in current.values()):
        return SensorResult(skip_reason=SkipReason("the HR tables are empty"), cursor=cursor)
    return SensorResult(run_requests=[RunRequest(run_key=f"hr_reports:{cursor}")], cursor=cursor)
