"""Asset keys of the `cve` group (`[group, layer, entity]`), named once for every module that refers to them."""

from dagster import AssetKey

from etl_platform.defs.cve import tables
from etl_platform.defs.cve.schemas import CLEAN_MODELS

GROUP = "cve"
RAW_CVES = AssetKey([GROUP, "raw", "cves"])
CLEAN = {name: AssetKey([GROUP, "clean", name]) for name in CLEAN_MODELS}
DIFF = AssetKey([GROUP, "diff", "cve_changes"])
TABLES = {
    table.name: AssetKey([GROUP, "tables", table.name])
    for table in (tables.cve, *tables.CHILD_TABLES, tables.cve_change)
}
