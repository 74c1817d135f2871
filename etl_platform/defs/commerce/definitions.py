"""Everything the `commerce` group contributes to the code location (and the `ops` rate history load)."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from etl_platform.defs.commerce import assets, checks
from etl_platform.defs.commerce.schedules import commerce_daily_job, commerce_daily_schedule

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    asset_checks=load_asset_checks_from_modules([checks]),
    jobs=[commerce_daily_job],
    schedules=[commerce_daily_schedule],
)
