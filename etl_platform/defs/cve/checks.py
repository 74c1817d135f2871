"""Cross-asset checks of the `cve` group."""

import pandas as pd
import sqlalchemy as sa
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetIn, asset_check

from etl_platform.defs.cve import tables
from etl_platform.defs.cve.assets import CLEAN, RAW_CVES, TABLES
from etl_platform.defs.cve.diff import KEY_CHUNK
from etl_platform.defs.cve.partitions import cve_daily, day_window
from etl_platform.lib import quarantine
from etl_platform.lib.warehouse import WarehouseResource

RECONCILED = "reconciled_with_source"


def loaded_count(connection: sa.Connection, cves: pd.DataFrame, window) -> int:
    """How many of the day's CVEs the warehouse holds at the day's version or a newer one.

    Usually every one of them is still last modified within the day: one range count on the
    indexed `last_modified` says so. Only when that falls short are the day's keys looked up,
    to count those a later day has moved on.
    """
    start, end = window
    in_window = connection.execute(
        sa.select(sa.func.count()).where(tables.cve.c.last_modified.between(start, end))
    ).scalar_one()
    if in_window >= len(cves):
        return in_window
    keys = [int(k) for k in cves["cve_key"].dropna().unique()]
    total = 0
    for first in range(0, len(keys), KEY_CHUNK):
        total += connection.execute(
            sa.select(sa.func.count()).where(
                tables.cve.c.cve_key.in_(keys[first : first + KEY_CHUNK]), tables.cve.c.last_modified >= start
            )
        ).scalar_one()
    return total


@asset_check(
    asset=TABLES["cve"],
    name=RECONCILED,
    partitions_def=cve_daily,
    additional_ins={"raw": AssetIn(RAW_CVES), "cves": AssetIn(CLEAN["cves"])},
    description=(
        "NVD's totalResults == records kept raw == rows clean + quarantined == CVEs in the warehouse "
        "at this version or newer + quarantined. Mirrors go stale or short without anyone noticing; "
        "this notices."
    ),
)
def cve_reconciled_with_source(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, raw: dict, cves: pd.DataFrame
) -> AssetCheckResult:
    with warehouse.begin() as connection:
        loaded = loaded_count(connection, cves, day_window(context.partition_key))
        quarantined = quarantine.open_count(connection, "cve", context.partition_key, CLEAN["cves"])
    counts = {
        "api_total_results": raw["total_results"],
        "raw_records": raw["records"],
        "clean_rows": len(cves),
        "warehouse_rows": loaded,
        "quarantined": quarantined,
    }
    along = [raw["total_results"], raw["records"], len(cves) + quarantined, loaded + quarantined]
    passed = len(set(along)) == 1
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata=counts,
        description=None if passed else f"counts differ along the way: {counts}",
    )
