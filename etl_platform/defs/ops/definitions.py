"""Everything the `ops` group contributes to the code location."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from etl_platform.defs.ops import assets, checks
from etl_platform.defs.ops.replay import replay_quarantine_job
from etl_platform.defs.ops.schedules import (
    hr_backup_job,
    hr_backup_schedule,
    hr_restore,
    raw_retention_job,
    raw_retention_schedule,
)
from etl_platform.defs.ops.sensors import alert_router

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    asset_checks=load_asset_checks_from_modules([checks]),
    jobs=[raw_retention_job, hr_backup_job, hr_restore, replay_quarantine_job],
    schedules=[raw_retention_schedule, hr_backup_schedule],
    sensors=[alert_router],
)
