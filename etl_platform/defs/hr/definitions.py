"""Everything the `hr` group contributes to the code location."""

from dagster import Definitions, load_assets_from_modules

from etl_platform.defs.hr import migration, reports
from etl_platform.defs.hr.sensors import hr_api_writes_sensor, hr_landing_sensor, hr_migration_job

defs = Definitions(
    assets=load_assets_from_modules([migration, reports]),
    jobs=[hr_migration_job],
    sensors=[hr_landing_sensor, hr_api_writes_sensor],
)
