"""Assets of the `cve` group: raw pages -> clean tables -> per-day diff -> warehouse tables."""

from datetime import date

import orjson
import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    Output,
    TableColumn,
    TableSchema,
    asset,
    multi_asset,
)
from upath import UPath

from etl_platform.defs.cve import tables
from etl_platform.defs.cve.diff import LOADABLE, change_rows, diff_day, known_versions
from etl_platform.defs.cve.fetch import fetch_day
from etl_platform.defs.cve.parse import parse_vulnerabilities
from etl_platform.defs.cve.partitions import cve_daily, day_window
from etl_platform.defs.cve.resources import NvdResource
from etl_platform.defs.cve.schemas import CHANGE_KINDS, CLEAN_MODELS, CveDiffModel
from etl_platform.lib.frame_checks import (
    KNOWN_PARENT_CHECK,
    UNIQUE_KEY_CHECK,
    known_parent_check,
    schema_check,
    schema_check_spec,
    unique_key_check,
)
from etl_platform.lib.storage import StorageResource, frame_metadata
from etl_platform.lib.typed_frames import typed_frame
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import WarehouseResource

GROUP = "cve"
OWNERS = ["team:data-platform"]
RAW_CVES = AssetKey([GROUP, "raw", "cves"])
CLEAN = {name: AssetKey([GROUP, "clean", name]) for name in CLEAN_MODELS}
DIFF = AssetKey([GROUP, "diff", "cve_changes"])
TABLES = {
    table.name: AssetKey([GROUP, "tables", table.name])
    for table in (tables.cve, *tables.CHILD_TABLES, tables.cve_change)
}
CHILD_CLEAN = {
    "cve_metrics": tables.cve_metric,
    "cve_weaknesses": tables.cve_weakness,
    "cve_references": tables.cve_reference,
    "cve_cpe_matches": tables.cve_cpe_match,
}
FOREIGN_KEY_CHECK = "foreign_keys_intact"


def raw_folder(root: UPath, partition_key: str) -> UPath:
    """Where a day's pages are kept, beside the day's manifest written by the JSON IO manager."""
    return root.joinpath(*RAW_CVES.path, partition_key)


@asset(
    key=RAW_CVES,
    group_name=GROUP,
    partitions_def=cve_daily,
    io_manager_key="json_io_manager",
    kinds={"json", "python"},
    owners=OWNERS,
    description=(
        "CVEs last modified during the day, as NVD's API 2.0 sent them: one JSON file per page "
        "in the day's folder, plus this manifest (totalResults, pages, requests). A failed day "
        "resumes from the pages it kept."
    ),
)
def raw_cves(context: AssetExecutionContext, nvd: NvdResource, storage: StorageResource) -> Output[dict]:
    root = storage.root()
    partition = context.partition_key
    folder = raw_folder(root, partition)
    # A manifest means the day completed before: a new run asks NVD afresh.
    completed_before = root.joinpath(*RAW_CVES.path, f"{partition}.json").exists()
    day = fetch_day(nvd.client(context.log), folder, partition, day_window(partition), context.log, fresh=completed_before)
    manifest = day.manifest(source=nvd.resolved_url())
    return Output(
        manifest,
        metadata={
            "dagster/row_count": day.records,
            "total_results": day.total_results,
            "pages": len(day.pages),
            "requests": day.requests,
            "resumed_pages": day.resumed_pages,
            "repaged": day.repaged,
            "folder": MetadataValue.path(str(folder)),
        },
    )


def read_raw_day(root: UPath, manifest: dict) -> dict[str, pd.DataFrame]:
    """Parse a day's kept pages one at a time into typed frames of every clean table."""
    folder = raw_folder(root, manifest["partition"])
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in CLEAN_MODELS}
    for name in manifest["pages"]:
        page = orjson.loads((folder / name).read_bytes())
        for table, rows in parse_vulnerabilities(page["vulnerabilities"]).items():
            parts[table].append(typed_frame(rows, CLEAN_MODELS[table]))
    # One table at a time, dropping its parts, so the day is never held twice.
    return {
        name: pd.concat(parts.pop(name), ignore_index=True) if parts[name] else typed_frame([], CLEAN_MODELS[name])
        for name in list(parts)
    }


@multi_asset(
    outs={
        name: AssetOut(
            key=key,
            io_manager_key="parquet_io_manager",
            kinds={"pandas", "parquet"},
            owners=OWNERS,
            description=f"{CLEAN_MODELS[name].__doc__} Typed, checked against {CLEAN_MODELS[name].__name__}.",
        )
        for name, key in CLEAN.items()
    },
    ins={"raw": AssetIn(RAW_CVES)},
    group_name=GROUP,
    partitions_def=cve_daily,
    check_specs=[schema_check_spec(CLEAN[name], model) for name, model in CLEAN_MODELS.items()]
    + [AssetCheckSpec(UNIQUE_KEY_CHECK, asset=CLEAN["cves"], blocking=True, description="one row per CVE")]
    + [
        AssetCheckSpec(KNOWN_PARENT_CHECK, asset=CLEAN[name], blocking=True, description="every row belongs to a CVE of the day")
        for name in CHILD_CLEAN
    ],
)
def clean_cves(context: AssetExecutionContext, raw: dict, storage: StorageResource):
    frames = read_raw_day(storage.root(), raw)
    for name, frame in frames.items():
        yield Output(frame, output_name=name, metadata=frame_metadata(frame))
    for name, frame in frames.items():
        yield schema_check(CLEAN[name], CLEAN_MODELS[name], frame)
    yield unique_key_check(CLEAN["cves"], frames["cves"], ["cve_id"])
    for name in CHILD_CLEAN:
        yield known_parent_check(CLEAN[name], frames[name], frames["cves"], "cve_key")


@asset(
    key=DIFF,
    ins={"cves": AssetIn(CLEAN["cves"])},
    group_name=GROUP,
    partitions_def=cve_daily,
    io_manager_key="parquet_io_manager",
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    check_specs=[schema_check_spec(DIFF, CveDiffModel)],
    description=(
        "Each CVE of the day against the version the warehouse knew before: new, changed, "
        "unchanged (this version is already loaded) or superseded (a newer one is)."
    ),
)
def cve_changes(context: AssetExecutionContext, cves: pd.DataFrame, warehouse: WarehouseResource):
    warehouse.ensure_tables(tables.metadata)
    day = date.fromisoformat(context.partition_key)
    with warehouse.begin() as connection:
        known = known_versions(connection, cves["cve_key"], day)
    diff = diff_day(cves, known)
    counts = diff["change"].value_counts()
    yield Output(
        diff,
        metadata={**frame_metadata(diff), **{f"changes/{kind}": int(counts.get(kind, 0)) for kind in CHANGE_KINDS}},
    )
    yield schema_check(DIFF, CveDiffModel, diff)


def column_schema(table: sa.Table) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(c.name, str(c.type), description=c.comment or "") for c in table.columns]
    )


def _table_spec(table, deps: list[AssetKey]) -> AssetSpec:
    return AssetSpec(
        key=TABLES[table.name],
        deps=deps,
        group_name=GROUP,
        kinds={"sql", "postgres"},
        owners=OWNERS,
        description=f"{table.comment} Upserted per day, in one transaction with the other cve tables.",
        metadata={"dagster/table_name": table.name, "dagster/column_schema": column_schema(table)},
    )


@multi_asset(
    specs=[_table_spec(tables.cve, [CLEAN["cves"], DIFF])]
    + [_table_spec(table, [CLEAN[name], DIFF]) for name, table in CHILD_CLEAN.items()]
    + [_table_spec(tables.cve_change, [DIFF])],
    ins={**{name: AssetIn(key) for name, key in CLEAN.items()}, "diff": AssetIn(DIFF)},
    partitions_def=cve_daily,
    check_specs=[
        AssetCheckSpec(FOREIGN_KEY_CHECK, asset=TABLES[child.name], description="every row has its CVE in `cve`")
        for child in tables.CHILD_TABLES
    ],
)
def cve_tables(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    cves: pd.DataFrame,
    cve_metrics: pd.DataFrame,
    cve_weaknesses: pd.DataFrame,
    cve_references: pd.DataFrame,
    cve_cpe_matches: pd.DataFrame,
    diff: pd.DataFrame,
):
    """Upsert the day's new and changed CVEs and their children, in one transaction."""
    day = date.fromisoformat(context.partition_key)
    loadable = diff.loc[diff["change"].isin(LOADABLE), "cve_key"]
    children = dict(zip(CHILD_CLEAN.values(), (cve_metrics, cve_weaknesses, cve_references, cve_cpe_matches)))
    warehouse.ensure_tables(tables.metadata)
    with warehouse.begin() as connection:
        result = merge(
            connection,
            tables.cve,
            only_keys(cves, loadable),
            {table: only_keys(frame, loadable) for table, frame in children.items()},
        )
        changes = merge(connection, tables.cve_change, change_rows(diff, day))
    context.log.info(f"{context.partition_key}: {result}; {changes}")
    yield MaterializeResult(
        asset_key=TABLES["cve"],
        metadata={
            "inserted": result.inserted,
            "updated": result.updated,
            "unchanged_or_older": result.unchanged,
            "day_cves": len(cves),
            "warehouse": warehouse.redacted_url(),
        },
    )
    for table in tables.CHILD_TABLES:
        yield MaterializeResult(asset_key=TABLES[table.name], metadata={"rows_replaced": result.children[table.name]})
    yield MaterializeResult(
        asset_key=TABLES["cve_change"], metadata={"inserted": changes.inserted, "updated": changes.updated}
    )
    with warehouse.begin() as connection:
        for table in tables.CHILD_TABLES:
            yield foreign_key_check(connection, table)


def only_keys(frame: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    """Rows of these CVEs; the frame itself when it holds no others (no copy of a whole day)."""
    wanted = frame["cve_key"].isin(keys)
    return frame if wanted.all() else frame[wanted]


def foreign_key_check(connection, child) -> AssetCheckResult:
    """Rows of a child table whose CVE is missing from `cve` (the whole table, not only the day)."""
    orphans = connection.execute(
        sa.select(sa.func.count())
        .select_from(child.outerjoin(tables.cve, child.c.cve_key == tables.cve.c.cve_key))
        .where(tables.cve.c.cve_key.is_(None))
    ).scalar_one()
    return AssetCheckResult(
        asset_key=TABLES[child.name], check_name=FOREIGN_KEY_CHECK, passed=orphans == 0, metadata={"orphan_rows": orphans}
    )
