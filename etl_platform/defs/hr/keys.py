"""Asset keys of the `hr` group (`[hr, layer, entity]`), named once for every module that refers to them."""

from dagster import AssetKey

GROUP = "hr"
TABLE_KEYS = {name: AssetKey([GROUP, "tables", name]) for name in ("departments", "jobs", "hired_employees")}
REJECTIONS_KEY = AssetKey([GROUP, "tables", "ingest_rejections"])
REPORT_KEYS = {
    "hires_by_quarter": AssetKey([GROUP, "reports", "hires_by_quarter"]),
    "departments_above_mean": AssetKey([GROUP, "reports", "departments_above_mean"]),
}
