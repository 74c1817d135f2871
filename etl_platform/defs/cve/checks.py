"""Every asset check of the `cve` group: the results the assets yield, and the cross-asset checks."""

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    AssetKey,
    MetadataValue,
    asset_check,
)

from etl_platform.defs.cve import tables
from etl_platform.defs.cve.keys import CLEAN, GROUP, RAW_CVES, TABLES
from etl_platform.defs.cve.partitions import cve_daily, day_window
from etl_platform.lib import quarantine
from etl_platform.lib.frame_checks import SCHEMA_CHECK
from etl_platform.lib.key_lookups import count_in_chunks
from etl_platform.lib.quarantine import Verdict
from etl_platform.lib.warehouse import WarehouseResource

DRIFT_CHECK = "schema_drift"
FOREIGN_KEY_CHECK = "foreign_keys_intact"
RECONCILED = "reconciled_with_source"


def drift_check(drift: dict) -> AssetCheckResult:
    """The day's record keys the parser does not model: WARN, naming each with an example."""
    return AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not drift,
        severity=AssetCheckSeverity.WARN,
        metadata={"unmodelled_keys": len(drift), "schema_drift": MetadataValue.json(drift)},
        description=(
            "keys the parser does not model (extend parse.py to keep them): "
            + ", ".join(f"{path} (e.g. {seen['example']})" for path, seen in sorted(drift.items()))
            if drift
            else None
        ),
    )


def table_gate_check(asset_key: AssetKey, counts: dict, verdict: Verdict) -> AssetCheckResult:
    """A child table's rows against its model: their failures are counted in the records' verdict."""
    failed = bool(counts["failing_rows"] or counts["structural"])
    blocking = verdict.blocked and failed
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=SCHEMA_CHECK,
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
        metadata=counts,
        description=(verdict.reason() if blocking else "its CVEs were quarantined") if failed else None,
    )


def foreign_key_check(connection: sa.Connection, child: sa.Table) -> AssetCheckResult:
    """Rows of a child table whose CVE is missing from `cve` (the whole table, not only the day)."""
    orphans = connection.execute(
        sa.select(sa.func.count())
        .select_from(child.outerjoin(tables.cve, child.c.cve_key == tables.cve.c.cve_key))
        .where(tables.cve.c.cve_key.is_(None))
    ).scalar_one()
    return AssetCheckResult(
        asset_key=TABLES[child.name],
        check_name=FOREIGN_KEY_CHECK,
        passed=orphans == 0,
        metadata={"orphan_rows": orphans},
    )


def loaded_count(connection: sa.Connection, cves: pd.DataFrame, window) -> int:
    """How many of the day's CVEs the warehouse holds at the day's version or a newer one.

    Usually every one of them is still last modified within the day: one range count on the
    indexed `last_modified` says so. Only when that falls short are the day's keys looked up,
    to count those a later day has moved on.
    """
    start, end = window
    cve = tables.cve.c
    in_window = connection.execute(sa.select(sa.func.count()).where(cve.last_modified.between(start, end))).scalar_one()
    if in_window >= len(cves):
        return in_window
    return count_in_chunks(
        connection,
        lambda keys: sa.select(sa.func.count()).where(cve.cve_key.in_(keys), cve.last_modified >= start),
        [int(k) for k in cves["cve_key"].dropna().unique()],
    )


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
        quarantined = quarantine.open_count(connection, GROUP, context.partition_key, CLEAN["cves"])
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
