"""Everything the `sales` group contributes to the code location."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from etl_platform.defs.sales import assets, checks
from etl_platform.defs.sales.schedules import sales_job, sales_schedule
from etl_platform.defs.sales.sensors import sales_sensor

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    asset_checks=load_asset_checks_from_modules([checks]),
    jobs=[sales_job],
    schedules=[sales_schedule],
    sensors=[sales_sensor],
)
