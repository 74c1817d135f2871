"""One daily partitions definition (UTC) for every asset of the `cve` group.

Partition D holds the CVEs whose `lastModified` falls within D, as NVD reports them.
"""

from datetime import datetime, timedelta, timezone

from dagster import DailyPartitionsDefinition

# The CVE list starts in 1999; earlier days cannot hold a record.
cve_daily = DailyPartitionsDefinition(start_date="1999-01-01", timezone="UTC")


def day_window(partition_key: str) -> tuple[datetime, datetime]:
    """First and last instant (millisecond precision, both inclusive) of a UTC day."""
    start = datetime.strptime(partition_key, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return start, start + timedelta(days=1) - timedelta(milliseconds=1)
