"""Jobs of the `hr` group: `hr_migration`, started by the landing sensor (the group has no schedule)."""

from dagster import AssetSelection, define_asset_job

from etl_platform.defs.hr.assets import hr_tables
from etl_platform.defs.hr.keys import REJECTIONS_KEY, REPORT_KEYS, TABLE_KEYS

MIGRATION_OP = hr_tables.op.name

hr_migration_job = define_asset_job(
    "hr_migration",
    selection=AssetSelection.assets(*TABLE_KEYS.values(), REJECTIONS_KEY, *REPORT_KEYS.values()),
    description=(
        "Load the HR files of the landing place (`HR_LANDING_URL`) into the warehouse, "
        "referenced tables first, and refresh the hiring reports. Without run config every "
        "known file the landing holds is loaded; `ops.hr_tables.config.files` names a subset."
    ),
)


def migration_run_config(files: list[str]) -> dict:
    """Run config of `hr_migration` loading only `files`."""
    return {"ops": {MIGRATION_OP: {"config": {"files": files}}}}
