"""Asset keys of the `hr` group, named once for every module that refers to them."""

from dagster import AssetKey

GROUP = "hr"
OWNERS = ["team:data-platform"]
TABLE_KEYS = {name: AssetKey([GROUP, "tables", name]) for name in ("departments", "jobs", "hired_employees")}
REJECTIONS_KEY = AssetKey([GROUP, "tables", "ingest_rejections"])
REPORT_KEYS = {
    "hires_by_quarter": AssetKey([GROUP, "reports", "hires_by_quarter"]),
    "departments_above_mean": AssetKey([GROUP, "reports", "departments_above_mean"]),
}
BACKUP_KEY = AssetKey(["ops", "backup", "hr_tables"])
