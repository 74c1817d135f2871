"""Everything the `ops` group contributes to the code location."""

from dagster import Definitions, load_assets_from_modules

from etl_platform.defs.ops import assets
from etl_platform.defs.ops.schedules import raw_retention_job, raw_retention_schedule
from etl_platform.defs.ops.sensors import alert_on_failed_check, alert_on_run_failure

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    jobs=[raw_retention_job],
    schedules=[raw_retention_schedule],
    sensors=[alert_on_run_failure, alert_on_failed_check],
)
