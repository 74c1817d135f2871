"""Schedules of the `ops` group."""

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

raw_retention_job = define_asset_job(
    "raw_retention", selection=AssetSelection.assets(["ops", "retention", "raw_files"])
)
raw_retention_schedule = ScheduleDefinition(job=raw_retention_job, cron_schedule="30 4 * * *", execution_timezone="UTC")
