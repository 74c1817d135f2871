"""Jobs and schedules of the `ops` group.

- `raw_retention`: daily 04:30 UTC.
- `hr_backup`: Saturdays 00:00 UTC, backing up as the day that just ended (Friday).
- `hr_restore`: restores a day's backup into the warehouse in one transaction (run by hand).
"""

from datetime import timedelta, timezone

from dagster import (
    AssetSelection,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    job,
    schedule,
)

from etl_platform.defs.ops.keys import BACKUP_KEY, RETENTION_KEY
from etl_platform.defs.ops.partitions import backup_daily
from etl_platform.defs.ops.restore import restore_hr_tables

RESTORE_JOB = "hr_restore"

raw_retention_job = define_asset_job("raw_retention", selection=AssetSelection.assets(RETENTION_KEY))
raw_retention_schedule = ScheduleDefinition(job=raw_retention_job, cron_schedule="30 4 * * *", execution_timezone="UTC")


hr_backup_job = define_asset_job(
    "hr_backup",
    selection=AssetSelection.assets(BACKUP_KEY),
    partitions_def=backup_daily,
    description="Backs up the HR tables to AVRO for one day, then proves the files restore.",
)


@schedule(
    name="hr_backup_schedule",
    job=hr_backup_job,
    cron_schedule="0 0 * * 6",
    execution_timezone="UTC",
    description="Saturdays 00:00 UTC, as the original did: backs up as the day that just ended (Friday).",
)
def hr_backup_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    day = (context.scheduled_execution_time.astimezone(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    return RunRequest(run_key=day, partition_key=day)


@job(
    name=RESTORE_JOB,
    description=(
        "Restores HR tables from a day's AVRO backup, all in one transaction. Config: "
        '`{"day": "YYYY-MM-DD", "tables": [...]}` (tables default to all). On Postgres, a table '
        "still referenced by rows of a table not restored with it cannot be emptied: restore both."
    ),
)
def hr_restore():
    restore_hr_tables()
