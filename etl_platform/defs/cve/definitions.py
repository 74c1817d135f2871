"""Everything the `cve` group contributes to the code location."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from etl_platform.defs.cve import assets, checks
from etl_platform.defs.cve.schedules import cve_daily_job, cve_daily_schedule

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    asset_checks=load_asset_checks_from_modules([checks]),
    jobs=[cve_daily_job],
    schedules=[cve_daily_schedule],
)
