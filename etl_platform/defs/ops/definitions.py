"""Everything the `ops` group contributes to the code location."""

from dagster import Definitions, load_assets_from_modules

from etl_platform.defs.ops import assets
from etl_platform.defs.ops.schedules import raw_retention_job, raw_retention_schedule

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    jobs=[raw_retention_job],
    schedules=[raw_retention_schedule],
)
