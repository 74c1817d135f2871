"""The `hr_migration` job and the sensor that starts it when files land."""

from __future__ import annotations

import hashlib
import json

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
