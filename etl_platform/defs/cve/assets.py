"""Assets of the `cve` group: raw pages -> clean tables -> per-day diff -> warehouse tables."""

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from etl_platform.defs.cve import tables
from etl_platform.defs.cve.checks import (
    DRIFT_CHECK,
    FOREIGN_KEY_CHECK,
    drift_check,
    foreign_key_check,
    table_gate_check,
)
from etl_platform.defs.cve.diff import LOADABLE, change_rows, diff_day, known_versions
from etl_platform.defs.cve.fetch import PAGE_FIELD, fetch_day
from etl_platform.defs.cve.keys import CLEAN, DIFF, GROUP, RAW_CVES, TABLES
from etl_platform.defs.cve.parse import parse_records
from etl_platform.defs.cve.partitions import cve_daily, day_window
from etl_platform.defs.cve.resources import NvdResource
from etl_platform.defs.cve.schemas import CHANGE_KINDS, CLEAN_MODELS, CveDiffModel
from etl_platform.lib.changes import change_counts
from etl_platform.lib.frame_checks import (
    KNOWN_PARENT_CHECK,
    SCHEMA_CHECK,
    UNIQUE_KEY_CHECK,
    known_parent_check,
    schema_check,
    schema_check_spec,
    unique_key_check,
)
from etl_platform.lib.storage import StorageResource, frame_metadata
from etl_platform.lib import quarantine
from etl_platform.lib.quarantine import Gate, QuarantineResource, Verdict
from etl_platform.lib.raw_pages import items_at, page_items, raw_asset, raw_folder
from etl_platform.lib.table_assets import model_metadata, table_spec, table_state_metadata
from etl_platform.lib.typed_frames import typed_frame, typed_frame_and_failures
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import WarehouseResource

# Each clean child frame and the warehouse table it loads into.
CHILD_CLEAN = {
    "cve_metrics": tables.cve_metric,
    "cve_weaknesses": tables.cve_weakness,
    "cve_references": tables.cve_reference,
    "cve_cpe_matches": tables.cve_cpe_match,
    "cve_ssvc": tables.cve_ssvc,
}


@raw_asset(
    RAW_CVES,
    group=GROUP,
    partitions_def=cve_daily,
    check_specs=[
        AssetCheckSpec(
            DRIFT_CHECK,
            asset=RAW_CVES,
            description="every key of the day's records is one the parser models (WARN: new keys, with an example)",
        )
    ],
    description=(
        "CVEs last modified during the day, as NVD's API 2.0 sent them: one JSON file per page "
        "in the day's folder, plus this manifest (pages, records, requests and NVD's totalResults). "
        "A failed day resumes from the pages it kept; a day that completed before is asked afresh. "
        "Keys the parser does not model are listed as schema_drift."
    ),
)
def raw_cves(context: AssetExecutionContext, nvd: NvdResource, storage: StorageResource):
    partition = context.partition_key
    folder = raw_folder(storage.root(), RAW_CVES, partition)
    # A manifest means the day completed before: a new run asks NVD afresh.
    completed_before = folder.with_name(f"{partition}.json").exists()
    day = fetch_day(
        nvd.client(context.log), folder, partition, day_window(partition), context.log, fresh=completed_before
    )
    manifest = day.manifest(nvd.api_url, folder)
    drift = day.drift
    if drift:
        context.log.warning(f"{partition}: keys the parser does not model: {drift}")
    yield Output(
        manifest,
        metadata={
            "dagster/row_count": day.records,
            "total_results": day.total_results,
            "pages": len(day.pages),
            "requests": day.requests,
            "resumed_pages": day.resumed_pages,
            "repaged": day.repaged,
            "folder": MetadataValue.path(str(folder)),
            "schema_drift": MetadataValue.json(drift),
        },
    )
    yield drift_check(drift)


@dataclass
class CleanDay:
    """A day's typed frames, the record each row comes from, and the gate's decision."""

    frames: dict[str, pd.DataFrame]
    verdict: Verdict
    gate: Gate


def read_raw_day(manifest: dict, max_bad_share: float = quarantine.DEFAULT_MAX_BAD_SHARE) -> CleanDay:
    """Parse a day's kept pages one at a time into typed frames of every clean table, then gate them.

    A record that cannot be parsed, holds a value its column cannot take or breaks a model's row
    rule is rejected with every row it gave (the CVE and its children); the rest of the day stays.
    """
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in CLEAN_MODELS}
    positions: dict[str, list[np.ndarray]] = {name: [] for name in CLEAN_MODELS}
    unparsed: dict[int, list[str]] = {}
    total = 0
    for items in page_items(manifest, PAGE_FIELD):
        parsed = parse_records(items, total)
        total += len(items)
        unparsed.update(parsed.failures)
        for table, rows in parsed.tables.items():
            frame, bad = typed_frame_and_failures(rows, CLEAN_MODELS[table])
            records = np.asarray(parsed.positions[table], dtype=np.int64)
            for row, reasons in bad.items():
                unparsed.setdefault(int(records[row]), []).extend(f"{table}.{reason}" for reason in reasons)
            parts[table].append(frame)
            positions[table].append(records)
    gate = Gate(total, max_bad_share)
    for record, reasons in unparsed.items():
        gate.reject(record, reasons)
    # One table at a time, dropping its parts, so the day is never held twice.
    frames, records = {}, {}
    for table in CLEAN_MODELS:
        if parts[table]:
            frames[table] = pd.concat(parts.pop(table), ignore_index=True)
        else:
            frames[table] = typed_frame([], CLEAN_MODELS[table])
        records[table] = np.concatenate(positions.pop(table)) if positions[table] else np.empty(0, dtype=np.int64)
        gate.check(table, CLEAN_MODELS[table], frames[table], records[table])
    verdict = gate.verdict(lambda record: rejected_record(manifest, record))
    if not verdict.blocked:
        frames = {table: gate.good(frame, records[table]) for table, frame in frames.items()}
    return CleanDay(frames, verdict, gate)


def rejected_record(manifest: dict, record: int) -> tuple[str, dict]:
    """A rejected record's key (its CVE id, or #position without one) and the item as NVD sent it."""
    found = items_at(manifest, PAGE_FIELD, [record])
    if record not in found:
        raise IndexError(f"record {record} is not in the kept pages")
    item = found[record]
    cve = item.get("cve") if isinstance(item, dict) else None
    cve_id = cve.get("id") if isinstance(cve, dict) else None
    return (cve_id if isinstance(cve_id, str) and cve_id else f"#{record}"), item


@multi_asset(
    outs={
        name: AssetOut(
            key=key,
            io_manager_key="parquet_io_manager",
            kinds={"pandas", "parquet"},
            metadata=model_metadata(CLEAN_MODELS[name]),
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
        AssetCheckSpec(
            KNOWN_PARENT_CHECK, asset=CLEAN[name], blocking=True, description="every row belongs to a CVE of the day"
        )
        for name in CHILD_CLEAN
    ],
)
def clean_cves(
    context: AssetExecutionContext,
    raw: dict,
    warehouse: WarehouseResource,
    quarantine_policy: QuarantineResource,
):
    day = read_raw_day(raw, quarantine_policy.max_bad_share)
    frames, verdict = day.frames, day.verdict
    kept = quarantine.set_aside(
        warehouse,
        verdict,
        domain=GROUP,
        asset=CLEAN["cves"],
        partition=context.partition_key,
        run_id=context.run_id,
        log=context.log,
    )
    for name, frame in frames.items():
        metadata = frame_metadata(frame)
        if name == "cves":
            metadata |= {"quarantined": len(verdict.rejected) if not verdict.blocked else 0, **kept}
        yield Output(frame, output_name=name, metadata=metadata)
    # The record-level verdict on `cves`: WARN with what was set aside, ERROR (blocking) when the day is refused.
    yield quarantine.gate_check(CLEAN["cves"], SCHEMA_CHECK, verdict, **day.gate.by_table["cves"])
    for name in CHILD_CLEAN:
        yield table_gate_check(CLEAN[name], day.gate.by_table[name], verdict)
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
    check_specs=[schema_check_spec(DIFF, CveDiffModel)],
    metadata={"reads_warehouse_tables": "cve, cve_change", **model_metadata(CveDiffModel)},
    description=(
        "Each CVE of the day against the version the warehouse knew before: new, changed, "
        "unchanged (this version is already loaded) or superseded (a newer one is). Reads the "
        "warehouse: `cve` for the stored versions, `cve_change` for the change recorded on the day."
    ),
)
def cve_changes(context: AssetExecutionContext, cves: pd.DataFrame, warehouse: WarehouseResource):
    day = date.fromisoformat(context.partition_key)
    with warehouse.begin() as connection:
        known = known_versions(connection, cves["cve_key"], day)
    diff = diff_day(cves, known)
    yield Output(diff, metadata={**frame_metadata(diff), **change_counts(diff["change"], CHANGE_KINDS)})
    yield schema_check(DIFF, CveDiffModel, diff)


def _table_spec(table, deps: list[AssetKey]) -> AssetSpec:
    return table_spec(
        TABLES[table.name],
        table,
        group=GROUP,
        deps=deps,
        description=f"{table.comment} Upserted per day, in one transaction with the other cve tables.",
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
    cve_ssvc: pd.DataFrame,
    diff: pd.DataFrame,
):
    """Upsert the day's new and changed CVEs and their children, in one transaction.

    Records of the day quarantined by an earlier run and loaded by this one are marked replayed
    in the same transaction.
    """
    day = date.fromisoformat(context.partition_key)
    loadable = diff.loc[diff["change"].isin(LOADABLE), "cve_key"]
    children = dict(
        zip(CHILD_CLEAN.values(), (cve_metrics, cve_weaknesses, cve_references, cve_cpe_matches, cve_ssvc))
    )
    with warehouse.begin() as connection:
        replayed = quarantine.mark_replayed(
            connection, domain=GROUP, asset=CLEAN["cves"], partition=context.partition_key, loaded_keys=cves["cve_id"]
        )
        result = merge(
            connection,
            tables.cve,
            only_keys(cves, loadable),
            {table: only_keys(frame, loadable) for table, frame in children.items()},
        )
        changes = merge(connection, tables.cve_change, change_rows(diff, day))
    context.log.info(f"{context.partition_key}: {result}; {changes}")
    with warehouse.begin() as connection:
        loaded = (tables.cve, *tables.CHILD_TABLES, tables.cve_change)
        state = {table.name: table_state_metadata(connection, table) for table in loaded}
    yield MaterializeResult(
        asset_key=TABLES["cve"],
        metadata={
            "inserted": result.inserted,
            "updated": result.updated,
            "unchanged_or_older": result.unchanged,
            "day_cves": len(cves),
            "replayed_from_quarantine": replayed,
            "warehouse": warehouse.redacted_url(),
            **result.path_metadata(),
            **state["cve"],
        },
    )
    for table in tables.CHILD_TABLES:
        yield MaterializeResult(
            asset_key=TABLES[table.name],
            metadata={
                "rows_replaced": result.children[table.name],
                **result.path_metadata(table.name),
                **state[table.name],
            },
        )
    yield MaterializeResult(
        asset_key=TABLES["cve_change"],
        metadata={
            "inserted": changes.inserted,
            "updated": changes.updated,
            **changes.path_metadata(),
            **state["cve_change"],
        },
    )
    with warehouse.begin() as connection:
        for table in tables.CHILD_TABLES:
            yield foreign_key_check(connection, table)


def only_keys(frame: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    """Rows of these CVEs; the frame itself when it holds no others (no copy of a whole day)."""
    wanted = frame["cve_key"].isin(keys)
    return frame if wanted.all() else frame[wanted]

