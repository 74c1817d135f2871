"""Partitions of the `ops` group."""

from dagster import DailyPartitionsDefinition

# One HR backup per UTC day.
backup_daily = DailyPartitionsDefinition(start_date="2021-01-01", timezone="UTC")
