"""Cross-asset checks of the `cve` group."""

import pandas as pd
import sqlalchemy as sa
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetIn, asset_check

from etl_platform.defs.cve import tables
from etl_platform.defs.cve.assets import CLEAN, RAW_CVES, TABLES
from etl_platform.defs.cve.diff import KEY_CHUNK
from etl_platform.defs.cve.partitions import cve_daily, day_window
from etl_platform.lib.warehouse import WarehouseResource

RECONCILED = "reconciled_with_source"


def loaded_count(connection: sa.Connection, cves: pd.DataFrame, since) -> int:
    """How many of the day's CVEs the warehouse holds at the day's version or a newer one."""
    keys = [int(k) for k in cves["cve_key"].dropna().unique()]
    total = 0
    for start in range(0, len(keys), KEY_CHUNK):
        total += connection.execute(
            sa.select(sa.func.count()).where(
                tables.cve.c.cve_key.in_(keys[start : start + KEY_CHUNK]), tables.cve.c.last_modified >= since
            )
        ).scalar_one()
    return total


@asset_check(
    asset=TABLES["cve"],
    name=RECONCILED,
    partitions_def=cve_daily,
    additional_ins={"raw": AssetIn(RAW_CVES), "cves": AssetIn(CLEAN["cves"])},
    description=(
        "NVD's totalResults == records kept raw == rows clean == CVEs in the warehouse at this "
        "version or newer. Mirrors go stale or short without anyone noticing; this notices."
    ),
)
def cve_reconciled_with_source(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, raw: dict, cves: pd.DataFrame
) -> AssetCheckResult:
    start, _ = day_window(context.partition_key)
    with warehouse.begin() as connection:
        loaded = loaded_count(connection, cves, start)
    counts = {
        "api_total_results": raw["total_results"],
        "raw_records": raw["records"],
        "clean_rows": len(cves),
        "warehouse_rows": loaded,
    }
    passed = len(set(counts.values())) == 1
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata=counts,
        description=None if passed else f"counts differ along the way: {counts}",
    )
