"""One daily partitions definition (UTC) for every asset of the `commerce` group.

Partition D means: the store's products as fetched for D, priced at the ECB rate of D (or of
the last day before D the ECB published one), and the rates the ECB published up to D.
"""

import warnings
from datetime import date, timedelta

from dagster import BetaWarning, DailyPartitionsDefinition, TimeWindowPartitionMapping

# The first day of the ECB euro reference rates.
commerce_daily = DailyPartitionsDefinition(start_date="1999-01-04", timezone="UTC")

# The day before: a day's diff and history build on the previous day's, so a backfill runs in
# date order. The first day of the series has no previous day, and needs none.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)  # allow_nonexistent_upstream_partitions: known, wanted
    PREVIOUS_DAY = TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )

# The ECB never goes longer than a long holiday weekend without a rate (Easter: Friday to
# Monday); two weeks back always holds the last published one.
LOOKBACK_DAYS = 14


def lookback_window(day: date) -> tuple[date, date]:
    """First and last day (inclusive) of the rates asked for on `day`."""
    return day - timedelta(days=LOOKBACK_DAYS), day
