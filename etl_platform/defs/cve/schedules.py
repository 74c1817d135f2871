"""The daily job and schedule of the `cve` group."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from etl_platform.defs.cve.keys import GROUP
from etl_platform.defs.cve.partitions import cve_daily

cve_daily_job = define_asset_job(
    "cve_daily",
    selection=AssetSelection.groups(GROUP),
    partitions_def=cve_daily,
    description="One day of NVD CVEs, end to end: raw pages, clean tables, diff, warehouse.",
)

# 03:00 UTC: the previous day is over everywhere and NVD has settled its updates.
cve_daily_schedule = build_schedule_from_partitioned_job(cve_daily_job, hour_of_day=3, minute_of_hour=0)
