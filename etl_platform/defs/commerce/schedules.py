"""The daily job and schedule of the `commerce` group."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from etl_platform.defs.commerce.keys import GROUP
from etl_platform.defs.commerce.partitions import commerce_daily

commerce_daily_job = define_asset_job(
    "commerce_daily",
    selection=AssetSelection.groups(GROUP),
    partitions_def=commerce_daily,
    description=(
        "One day of the commerce group: ECB rates, the category's products priced in USD and EUR, price history."
    ),
)

# 04:00 UTC: the ECB published the previous day's rate at about 16:00 CET.
commerce_daily_schedule = build_schedule_from_partitioned_job(commerce_daily_job, hour_of_day=4, minute_of_hour=0)
