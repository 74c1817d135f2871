"""Sensors of the `hr` group: files landing start `hr_migration`; API writes refresh the reports."""

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
    sensor,
)

from etl_platform.defs.hr.keys import REJECTIONS_KEY, REPORT_KEYS, TABLE_KEYS
from etl_platform.defs.hr.resources import LANDING_FILES, HrLandingResource
from etl_platform.defs.hr.schedules import hr_migration_job, migration_run_config
from etl_platform.defs.hr.tables import INGESTED
from etl_platform.lib.warehouse import WarehouseResource

FILES_TAG = "hr/files"
VERSIONS_TAG = "hr/file_versions"


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
def hr_landing_sensor(context: SensorEvaluationContext, hr_landing: HrLandingResource):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    landed = hr_landing.landed_files()
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
    with warehouse.begin() as connection:
        current = table_fingerprints(connection)
    cursor = json.dumps(current, sort_keys=True)
    if context.cursor == cursor:
        return SensorResult(skip_reason=SkipReason("the HR tables have not changed"), cursor=cursor)
    if context.cursor is None and not any(count for count, _ in current.values()):
        return SensorResult(skip_reason=SkipReason("the HR tables are empty"), cursor=cursor)
    return SensorResult(run_requests=[RunRequest(run_key=f"hr_reports:{cursor}")], cursor=cursor)
