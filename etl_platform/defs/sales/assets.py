"""Assets of the `sales` group: raw pages -> flattened files -> typed layer -> `sale`.

Not partitioned: every run pulls from the cursor (the end of the last window loaded into
`sale`, kept in that materialization's metadata) minus an overlap, to now; see `fetch.py`.
A sale that breaks a row-level rule is quarantined under the run's window (an ISO-8601
interval) and the rest of the run loads (`lib/quarantine.py`); a later run that loads it,
the overlap having fetched it again, marks it replayed.
"""

import io
from collections.abc import Callable, Collection
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Config,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from etl_platform.defs.sales import tables
from etl_platform.defs.sales.checks import LOADED_CHECK, loaded_check
from etl_platform.defs.sales.diff import diff_sales, loadable_sales, stored_sales
from etl_platform.defs.sales.fetch import (
    CURSOR_KEY,
    PAGE_FIELD,
    fetch_window,
    from_ms,
    parse_moment,
    run_folder_name,
    Window,
    run_window,
)
from etl_platform.defs.sales.keys import (
    CLEAN_SALES,
    DIFF_SALES,
    EXTRA_GROUP,
    FLAT_SALES,
    GROUP,
    OTHER_FLAT,
    RAW_SALES,
    SALE_TABLE,
)
from etl_platform.defs.sales.parse import (
    TypedSales,
    arrow_decimals,
    flat_sales,
    transaction_code,
    typed_sales_and_failures,
)
from etl_platform.defs.sales.resources import HotmartResource
from etl_platform.defs.sales.schemas import CHANGE_KINDS, KEY, SaleChangeModel, SaleModel
from etl_platform.lib import quarantine
from etl_platform.lib.changes import change_counts
from etl_platform.lib.flatten import flatten
from etl_platform.lib.frame_checks import (
    SCHEMA_CHECK,
    UNIQUE_KEY_CHECK,
    schema_check,
    schema_check_spec,
    unique_key_check,
)
from etl_platform.lib.quarantine import Gate, QuarantineResource
from etl_platform.lib.raw_pages import items_at, page_items, raw_asset, raw_folder
from etl_platform.lib.storage import StorageResource, frame_metadata, write_bytes
from etl_platform.lib.table_assets import (
    column_schema,
    model_metadata,
    table_kinds,
    table_metadata,
    table_state_metadata,
)
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import WarehouseResource

DEFAULT_OVERLAP_HOURS = 7 * 24


def last_cursor(instance: DagsterInstance) -> int | None:
    """End of the last window loaded into `sale` (epoch ms), from its latest materialization."""
    event = instance.get_latest_materialization_event(SALE_TABLE)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(CURSOR_KEY)
    return int(value.value) if value is not None else None


class SalesWindowConfig(Config):
    overlap_hours: float = Field(
        default=DEFAULT_OVERLAP_HOURS,
        ge=0,
        description=(
            "how far before the cursor a run starts again: late updates (a refund, a chargeback) of sales "
            "ordered within it are picked up; default 7 days, Hotmart's shortest guarantee"
        ),
    )
    start: str | None = Field(default=None, description="ISO date or date-time: pull from here instead (by hand)")
    end: str | None = Field(default=None, description="ISO date or date-time: pull up to here instead of now")


@raw_asset(
    RAW_SALES,
    group=GROUP,
    metadata={"reads_materialization": f"{SALE_TABLE.to_user_string()} ({CURSOR_KEY})"},
    description=(
        "Hotmart `sales/history` for the run's window (from the cursor minus the overlap, or "
        "SALES_START_DATE, to now), every documented transaction_status, as the API sent it: one "
        "JSON file per page under sales/raw/sales/<day>/<run>/, plus this manifest. The cursor is "
        f"read from the latest materialization of {SALE_TABLE.to_user_string()} (metadata {CURSOR_KEY})."
    ),
)
def raw_sales(
    context: AssetExecutionContext, config: SalesWindowConfig, hotmart: HotmartResource, storage: StorageResource
) -> Output[dict]:
    now = datetime.now(timezone.utc)
    window = run_window(
        last_cursor(context.instance),
        now,
        timedelta(hours=config.overlap_hours),
        start=parse_moment(config.start) if config.start else None,
        end=parse_moment(config.end) if config.end else None,
        first=hotmart.start_date,
    )
    context.log.info(f"sales window {window.describe()} (cursor {window.cursor_before_ms})")
    folder = raw_folder(storage.root(), RAW_SALES, run_folder_name(window))
    client = hotmart.client(context.log)
    fetched = fetch_window(client, "sales/history", window, folder)
    return Output(
        fetched.manifest("sales/history", hotmart.resolved_api_url()),
        metadata={
            "dagster/row_count": fetched.records,
            "window_start": from_ms(window.start_ms).isoformat(),
            "window_end": from_ms(window.end_ms).isoformat(),
            "continued_from_cursor": window.cursor_before_ms is not None,
            "pages": len(fetched.pages),
            "requests": fetched.requests,
            "token_requests": client.token_requests,
            "records_by_status": MetadataValue.json(fetched.by_status),
            "folder": MetadataValue.path(str(folder)),
        },
    )


def read_items(manifest: dict) -> list[dict]:
    """The items of every page a raw manifest lists, in order."""
    return [item for items in page_items(manifest, PAGE_FIELD) for item in items]


def fetched_sales(manifest: dict) -> int:
    """Distinct sales in the raw pages: one per transaction code, plus each sale without one."""
    codes: set[str] = set()
    keyless = 0
    for items in page_items(manifest, PAGE_FIELD):
        for item in items:
            code = transaction_code(item)
            if code is None:
                keyless += 1
            else:
                codes.add(code)
    return len(codes) + keyless


def flat_asset(key: AssetKey, group: str, description: str):
    """`@asset` of a layer flattened from the run's raw manifest, stored as Parquet."""
    return asset(
        key=key,
        ins={"raw": AssetIn(RAW_SALES)},
        group_name=group,
        io_manager_key="parquet_io_manager",
        kinds={"parquet", "pandas"},
        description=description,
    )


class FlatFilesConfig(Config):
    csv: bool = Field(default=False, description="also write the flattened rows as CSV, as the original system did")


@flat_asset(
    FLAT_SALES,
    GROUP,
    (
        "The run's sales flattened by the generic flatten: nested objects -> path keys joined with "
        "`_` (purchase_price_value), stable column order whatever the key order, values as sent. "
        "Kept per run as sales/flat/sales/<day>/<run>.parquet (and .csv when config csv=true)."
    ),
)
def flat_sales_files(context: AssetExecutionContext, config: FlatFilesConfig, raw: dict, storage: StorageResource):
    flat = flat_sales(read_items(raw))
    base = storage.root().joinpath(*FLAT_SALES.path, raw["run"])
    files = {"parquet": base.with_name(base.name + ".parquet")}
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(flat, preserve_index=False), buffer, compression="zstd")
    write_bytes(files["parquet"], buffer.getvalue())
    if config.csv:
        files["csv"] = base.with_name(base.name + ".csv")
        write_bytes(files["csv"], flat.to_csv(index=False).encode())
    return Output(
        flat,
        metadata={
            **frame_metadata(flat),
            **{f"file_{kind}": MetadataValue.path(str(path)) for kind, path in files.items()},
        },
    )


@asset(
    key=CLEAN_SALES,
    ins={"flat": AssetIn(FLAT_SALES), "raw": AssetIn(RAW_SALES)},
    group_name=GROUP,
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "pandas"},
    check_specs=[
        schema_check_spec(CLEAN_SALES, SaleModel),
        AssetCheckSpec(UNIQUE_KEY_CHECK, asset=CLEAN_SALES, blocking=True, description="one row per transaction"),
    ],
    metadata=model_metadata(SaleModel),
    description=(
        f"{SaleModel.__doc__} Typed: epoch ms -> UTC timestamps, money as decimals, integers and "
        "booleans as such; fields the model does not declare are kept, typed from their values. "
        "Checked against SaleModel: a sale without a transaction code, with a value its column cannot "
        "take or breaking a row rule is quarantined (the check warns); more than the allowed share "
        "(quarantine_policy.max_bad_share, default 5%) or a structural failure blocks the run."
    ),
)
def clean_sales(
    context: AssetExecutionContext,
    flat: pd.DataFrame,
    raw: dict,
    warehouse: WarehouseResource,
    quarantine_policy: QuarantineResource,
):
    typed = typed_sales_and_failures(flat)
    gate = Gate(typed.total, quarantine_policy.max_bad_share)
    for position, reasons in typed.failures.items():
        gate.reject(position, reasons)
    gate.check("sales", SaleModel, typed.frame, typed.records)
    verdict = gate.verdict(rejected_sale(raw, typed, set(gate.reasons)))
    frame = typed.frame if verdict.blocked else gate.good(typed.frame, typed.records)
    kept = quarantine.set_aside(
        warehouse,
        verdict,
        domain=GROUP,
        asset=CLEAN_SALES,
        partition=Window.of(raw).interval,
        run_id=context.run_id,
        log=context.log,
        across_partitions=True,  # the overlap fetches a sale again under a later window
    )
    quarantined = 0 if verdict.blocked else len(verdict.rejected)
    metadata = {**frame_metadata(frame), "duplicates_dropped": typed.duplicates, "quarantined": quarantined, **kept}
    yield Output(frame, metadata=metadata)
    yield quarantine.gate_check(CLEAN_SALES, SCHEMA_CHECK, verdict, **gate.by_table["sales"])
    yield unique_key_check(CLEAN_SALES, frame, [KEY])


def rejected_sale(raw: dict, typed: TypedSales, positions: Collection[int]) -> Callable[[int], tuple[str, Any]]:
    """For the gate: a rejected sale's key (its transaction code, #position without one) and its item as sent."""
    items = items_at(raw, PAGE_FIELD, positions)
    codes = pd.Series(typed.frame[KEY].to_numpy(dtype=object), index=typed.records)
    return lambda position: (codes.get(position) or f"#{position}", items[position])


@asset(
    key=DIFF_SALES,
    ins={"sales": AssetIn(CLEAN_SALES)},
    group_name=GROUP,
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "pandas"},
    check_specs=[schema_check_spec(DIFF_SALES, SaleChangeModel)],
    metadata={"reads_warehouse_tables": "sale", **model_metadata(SaleChangeModel)},
    description=(
        "Each sale of the run against the warehouse before it: new, changed (any column loaded into "
        "`sale` differs: a refund, a chargeback, an approval, a correction, a field the source "
        "added; with the previous and new status) or unchanged. Sales seen again in the overlap "
        "as stored are `unchanged`: sales/tables/sale skips them. Reads the warehouse: the row "
        "`sale` holds for each transaction of the run."
    ),
)
def sale_changes(context: AssetExecutionContext, sales: pd.DataFrame, warehouse: WarehouseResource):
    with warehouse.begin() as connection:
        stored = stored_sales(connection, sales)
    diff = diff_sales(sales, stored)
    yield Output(diff, metadata={**frame_metadata(diff), **change_counts(diff["change"], CHANGE_KINDS)})
    yield schema_check(DIFF_SALES, SaleChangeModel, diff)


@asset(
    key=SALE_TABLE,
    ins={"sales": AssetIn(CLEAN_SALES), "raw": AssetIn(RAW_SALES), "diff": AssetIn(DIFF_SALES)},
    group_name=GROUP,
    kinds=table_kinds(),
    check_specs=[
        AssetCheckSpec(
            LOADED_CHECK,
            asset=SALE_TABLE,
            description=(
                "every sale fetched in the run's window is in `sale` or quarantined: "
                "fetched == loaded + quarantined"
            ),
        )
    ],
    metadata=table_metadata(tables.sale),
    description=(
        f"{tables.sale.comment} The sales sales/diff/sale_changes says are new or changed are upserted "
        "on purchase_transaction by the generic merge with schema evolution; the unchanged ones are "
        "skipped (skipped_unchanged; `unchanged` counts them with those the merge found unchanged). New "
        "source fields become new columns (listed in added_columns); an incompatible type change "
        "fails the run before anything is loaded. Records the cursor for the next run. Quarantined "
        "sales it loads now are marked replayed, in the same transaction."
    ),
)
def sale_table(
    context: AssetExecutionContext, warehouse: WarehouseResource, sales: pd.DataFrame, raw: dict, diff: pd.DataFrame
):
    window = Window.of(raw)
    fetched = fetched_sales(raw)  # counted again from the pages as sent, not from the layers it checks
    loading = loadable_sales(sales, diff)
    skipped = len(sales) - len(loading)
    with warehouse.begin() as connection:
        # A sale is quarantined under the window that last fetched it, not this one: any window matches.
        replayed = quarantine.mark_replayed(
            connection,
            domain=GROUP,
            asset=CLEAN_SALES,
            partition=window.interval,
            loaded_keys=sales[KEY],
            across_partitions=True,
        )
        result = merge(connection, tables.sale, arrow_decimals(loading), evolve_schema=True)
        current = sa.Table("sale", sa.MetaData(), autoload_with=connection)
        check = loaded_check(connection, current, sales, fetched, window.interval)
        state = table_state_metadata(connection, current)
    context.log.info(f"sale: {result}; {skipped} skipped as unchanged; {replayed} replayed from quarantine")
    cursor = max(raw["window_end_ms"], raw.get("cursor_before_ms") or 0)
    yield MaterializeResult(
        metadata={
            "inserted": result.inserted,
            "updated": result.updated,
            "unchanged": skipped + result.unchanged,
            "skipped_unchanged": skipped,
            "added_columns": ", ".join(result.added_columns),
            "added_column_count": len(result.added_columns),
            "widened_columns": ", ".join(result.widened_columns),
            "replayed_from_quarantine": replayed,
            "window_start": from_ms(raw["window_start_ms"]).isoformat(),
            "window_end": from_ms(raw["window_end_ms"]).isoformat(),
            CURSOR_KEY: cursor,
            **state,
            "dagster/column_schema": column_schema(current),
            "warehouse": warehouse.redacted_url(),
            **result.path_metadata(),
        }
    )
    yield check


# ---- the other sales endpoints, for the same window: opt-in, in a group of their own. Not every
# account or API serves them: `--select 'group:sales'` must run with `sales/history` alone.

OTHER_ENDPOINTS = {
    "sale_users": ("sales/users", "participants of each sale (buyer, producer, affiliates) with documents and address"),
    "sale_commissions": ("sales/commissions", "commissions of each sale per participant"),
    "sale_price_details": ("sales/price/details", "price breakdown of each sale (base, VAT, fee, coupon, conversion)"),
}


def other_endpoint_asset(entity: str, endpoint: str, what: str):
    @flat_asset(
        OTHER_FLAT[entity],
        EXTRA_GROUP,
        (
            f"Hotmart `{endpoint}`: {what}, for the window of the last sales/history run, every status; "
            f"raw pages kept under sales/raw/{entity}/, flattened here (lists kept as JSON text). "
            f"Opt-in (group {EXTRA_GROUP}, not in `group:sales` nor the 7-minute job): materialize it with "
            f"--select 'group:{EXTRA_GROUP}' where the account serves `{endpoint}`."
        ),
    )
    def _other_endpoint(context: AssetExecutionContext, raw: dict, hotmart: HotmartResource, storage: StorageResource):
        window = Window.of(raw)
        folder = raw_folder(storage.root(), AssetKey([GROUP, "raw", entity]), run_folder_name(window))
        fetched = fetch_window(hotmart.client(context.log), endpoint, window, folder)
        items = read_items(fetched.manifest(endpoint, hotmart.resolved_api_url()))
        frame = flatten(items, key=("transaction",), name=entity).to_storable_frame()
        metadata = {**frame_metadata(frame), "pages": len(fetched.pages), "folder": MetadataValue.path(str(folder))}
        return Output(frame, metadata=metadata)

    _other_endpoint.__name__ = entity
    return _other_endpoint


other_endpoint_assets = [other_endpoint_asset(entity, *spec) for entity, spec in OTHER_ENDPOINTS.items()]
