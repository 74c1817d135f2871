"""Assets of the `hr` group, layer by layer: the migrated tables, then the hiring reports.

- tables: the landed CSV files (`HR_LANDING_URL`, see `resources.py`) loaded by one multi-asset,
  referenced tables first, so that the ids a hire refers to are the ids the warehouse holds once
  departments and jobs are loaded (`load.py`). A run loads the files named in its config (the
  landing sensor names the ones that changed) or, without config, every one the landing holds.
- reports: replaced from the tables whenever they change (eager), each with a chart (`reports.py`).
"""

import csv
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
    multi_asset,
)
from pydantic import Field

from etl_platform.defs.hr import tables
from etl_platform.defs.hr.charts import departments_above_mean_chart, hires_by_quarter_chart, report_metadata
from etl_platform.defs.hr.keys import GROUP, REJECTIONS_KEY, REPORT_KEYS, TABLE_KEYS
from etl_platform.defs.hr.load import (
    MAX_BATCH_ROWS,
    latest_rejections,
    load_metadata,
    load_records,
    parse_csv,
    raw_path,
    table_count,
)
from etl_platform.defs.hr.reports import (
    departments_above_mean,
    hires_by_department,
    hires_by_quarter,
    lock_report,
    read_hires,
)
from etl_platform.defs.hr.resources import LANDING_FILES, HrLandingResource
from etl_platform.defs.hr.rules import references
from etl_platform.lib.settings import warehouse_kind
from etl_platform.lib.storage import StorageResource, write_bytes
from etl_platform.lib.table_assets import table_kinds, table_state_metadata
from etl_platform.lib.warehouse import WarehouseResource
from etl_platform.lib.writes import replace


def column_schema(table: sa.Table) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(c.name, str(c.type), description=c.comment or "") for c in table.columns]
    )


def table_metadata(table: sa.Table) -> dict:
    """The warehouse table an asset is, for the UI."""
    return {"dagster/table_name": table.name, "dagster/column_schema": column_schema(table)}


# --- tables ----------------------------------------------------------------------------

class MigrationConfig(Config):
    files: list[str] | None = Field(
        default=None,
        description="landing files to load, e.g. ['jobs.csv'] (default: every known file the landing holds)",
    )
    batch_rows: int = Field(
        default=MAX_BATCH_ROWS, ge=1, le=MAX_BATCH_ROWS, description="rows per transaction, at most 1000"
    )


def _table_spec(table: sa.Table, description: str, **options) -> AssetSpec:
    return AssetSpec(
        key=REJECTIONS_KEY if table is tables.ingest_rejections else TABLE_KEYS[table.name],
        group_name=GROUP,
        kinds=table_kinds("csv"),
        description=description,
        metadata=table_metadata(table),
        **options,
    )


_LOADED = (
    "Migrated from `{file}` of the HR landing place (`HR_LANDING_URL`), kept as landed under "
    "`hr/raw/{stem}/`, checked against the HR rules and upserted on `id` in transactions of at "
    "most 1000 rows; rejected rows go to `ingest_rejections`."
)


@multi_asset(
    name="hr_tables",
    specs=[
        _table_spec(
            table,
            f"{table.comment} " + _LOADED.format(file=file, stem=table.name),
            # Referenced tables load first, in the same step: shown as lineage.
            deps=[TABLE_KEYS[referenced] for referenced in references(table).values()],
        )
        for file, table in LANDING_FILES.items()
    ]
    + [
        _table_spec(
            tables.ingest_rejections,
            f"{tables.ingest_rejections.comment} Appended to by the CSV migration (source: the file "
            "name) and the batch ingestion API (source: `api`); materialized when a migration run "
            "rejects rows.",
            skippable=True,
        )
    ],
    can_subset=True,
)
def hr_tables(
    context: AssetExecutionContext,
    config: MigrationConfig,
    warehouse: WarehouseResource,
    storage: StorageResource,
    hr_landing: HrLandingResource,
):
    """Load the landed HR files, referenced tables first; one materialization per table."""
    unknown = sorted(set(config.files or ()) - set(LANDING_FILES))
    if unknown:
        raise Failure(f"unknown landing file(s) {unknown}; known: {sorted(LANDING_FILES)}")
    landed = hr_landing.landed_files()
    wanted = config.files if config.files is not None else list(landed)
    missing = sorted(set(wanted) - set(landed))
    if missing:
        raise Failure(f"file(s) {missing} named in the run config are not in the landing place {hr_landing.root()}")
    storage_base = storage.root()

    rejected: dict[str, int] = {}
    for file, table in LANDING_FILES.items():
        key = TABLE_KEYS[table.name]
        if key not in context.selected_asset_keys:
            continue
        if file not in wanted:
            # Nothing new for this table: it is reported as it stands, so that the reports
            # downstream still run (a skipped table would skip them).
            context.log.info(f"{file}: not loaded in this run, {table.name} unchanged")
            with warehouse.begin() as connection:
                state = table_state_metadata(connection, table)
            yield MaterializeResult(asset_key=key, metadata={"source": "none", "rows_read": 0, **state})
            continue
        data = landed[file].path.read_bytes()
        kept = raw_path(storage_base, landed[file], data)
        write_bytes(kept, data)
        try:
            records = parse_csv(data)
        except (UnicodeDecodeError, csv.Error) as error:
            raise Failure(f"{file} is not a UTF-8 CSV file ({error}); kept as landed at {kept}") from error
        load = load_records(warehouse, table, records, source=file, batch_rows=config.batch_rows)
        merged = load.merged
        context.log.info(
            f"{file} -> {table.name}: {load.read} read, {load.loaded} loaded "
            f"({merged.inserted} new, {merged.updated} updated), {load.rejected} rejected, "
            f"{len(load.transactions)} transaction(s)"
        )
        rejected[file] = load.rejected
        yield MaterializeResult(
            asset_key=key, metadata=load_metadata(load, landed[file], kept, table_count(warehouse, table))
        )

    if REJECTIONS_KEY in context.selected_asset_keys and sum(rejected.values()):
        yield MaterializeResult(
            asset_key=REJECTIONS_KEY,
            metadata={
                "rows_rejected": sum(rejected.values()),
                "rejected_by_source": MetadataValue.json({f: n for f, n in rejected.items() if n}),
                "dagster/row_count": table_count(warehouse, tables.ingest_rejections),
                "preview": MetadataValue.md(latest_rejections(warehouse).to_markdown(index=False)),
            },
        )


# --- reports ---------------------------------------------------------------------------

_REPORT = dict(
    group_name=GROUP,
    deps=list(TABLE_KEYS.values()),
    kinds={"pandas", "matplotlib", warehouse_kind()},
    automation_condition=AutomationCondition.eager(),
)


def report_asset(
    name: str,
    table: sa.Table,
    description: str,
    compute: Callable[[pd.DataFrame], pd.DataFrame],
    chart: Callable[[pd.DataFrame, pd.DataFrame], bytes],
    title: str,
) -> AssetsDefinition:
    """The asset `hr/reports/<name>`: table `table` replaced by `compute(hires)` in one transaction;
    its metadata shows `chart(hires, report)` under `title`, and the rows."""

    @asset(key=REPORT_KEYS[name], description=description, metadata=table_metadata(table), **_REPORT)
    def report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        with warehouse.begin() as connection:
            lock_report(connection, table)
            hires = read_hires(connection)
            rows = compute(hires)
            written = replace(connection, table, rows)
        context.log.info(f"{table.name}: {len(rows)} rows")
        metadata = report_metadata(rows, chart(hires, rows), title)
        return MaterializeResult(metadata={**metadata, **written.as_metadata()})

    return report


hires_by_quarter_report = report_asset(
    "hires_by_quarter",
    tables.report_hires_by_quarter,
    (
        "Number of employees hired for each department and job in each quarter (q1..q4, by UTC "
        "hire date) of every year, ordered by department then job: table "
        "`report_hires_by_quarter`, replaced whenever the HR tables change. Metadata: a chart "
        "(per recent year, hires per department stacked by quarter) and the rows."
    ),
    hires_by_quarter,
    lambda hires, report: hires_by_quarter_chart(report),
    "Hires by quarter",
)
departments_above_mean_report = report_asset(
    "departments_above_mean",
    tables.report_departments_above_mean,
    (
        "For every year, the departments (id, name, number hired) that hired more employees "
        "than the mean number hired per department that year, the mean being taken over the "
        "departments that hired at least once that year (as the original challenge did); "
        "ordered by number hired, descending. Table `report_departments_above_mean`, replaced "
        "whenever the HR tables change. Metadata: a chart of every department against the "
        "mean and the rows."
    ),
    departments_above_mean,
    lambda hires, report: departments_above_mean_chart(hires_by_department(hires)),
    "Departments above the mean",
)
