"""Everything the `ops` group contributes to the code location."""

from dagster import Definitions, load_assets_from_modules

from etl_platform.defs.ops import assets, backup
from etl_platform.defs.ops.replay import replay_quarantine_job
from etl_platform.defs.ops.schedules import raw_retention_job, raw_retention_schedule
from etl_platform.defs.ops.sensors import alert_on_failed_check, alert_on_run_failure

defs = Definitions(
    assets=load_assets_from_modules([assets, backup]),
    asset_checks=[backup.backup_restores_exactly],
    jobs=[raw_retention_job, backup.hr_backup_job, backup.hr_restore, replay_quarantine_job],
    schedules=[raw_retention_schedule, backup.hr_backup_schedule],
    sensors=[alert_on_run_failure, alert_on_failed_check],
)
