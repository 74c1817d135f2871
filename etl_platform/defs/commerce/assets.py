"""Assets of the `commerce` group (the ECB's full rate history load is an `ops` asset).

    commerce/raw/fx_rates -> commerce/clean/fx_rates -> commerce/tables/fx_rate
    commerce/raw/products -> commerce/clean/products -> commerce/diff/product_changes
        -> commerce/tables/product, commerce/tables/product_price_history
    (a product the store sends broken is set aside in `quarantine`; the rest of its day loads)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Failure,
    MaterializeResult,
    Output,
    asset,
    multi_asset,
)
from upath import UPath

from etl_platform.defs.commerce import tables
from etl_platform.defs.commerce.checks import ONE_OPEN_ROW_CHECK, one_open_row_check
from etl_platform.defs.commerce.diff import (
    LISTED,
    LOADABLE,
    PRESENT,
    QUARANTINED,
    diff_products,
    priced,
    warehouse_baseline,
)
from etl_platform.defs.commerce.parse import (
    HISTORY_FORMAT,
    eurofxref_window,
    listed_ids,
    parse_rates,
    product_key,
    published,
    rate_for_day,
    read_products,
    store_items,
)
from etl_platform.defs.commerce.keys import (
    CLEAN_FX,
    CLEAN_PRODUCTS,
    DIFF,
    GROUP,
    RAW_FX,
    RAW_PRODUCTS,
    TABLES,
)
from etl_platform.defs.commerce.partitions import PREVIOUS_DAY, commerce_daily, lookback_window
from etl_platform.defs.commerce.resources import EcbAnswer, EcbResource, FakeStoreResource
from etl_platform.defs.commerce.schemas import CHANGE_KINDS, FxRateModel, ProductChangeModel, ProductModel
from etl_platform.defs.ops.keys import FX_HISTORY, FX_HISTORY_FILE
from etl_platform.lib import quarantine, raw_pages, scd2
from etl_platform.lib.changes import change_counts
from etl_platform.lib.frame_checks import SCHEMA_CHECK, schema_check, schema_check_spec
from etl_platform.lib.quarantine import Gate, QuarantineResource, Verdict
from etl_platform.lib.raw_pages import clear_folder, page_name, raw_asset, raw_folder, read_pages, write_page
from etl_platform.lib.storage import StorageResource, frame_metadata
from etl_platform.lib.table_assets import (
    model_metadata,
    table_kinds,
    table_metadata,
    table_spec,
    table_state_metadata,
)
from etl_platform.lib.typed_frames import typed_frame, typed_frame_and_failures
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import WarehouseResource

EXTENSIONS = {"csvdata": "csv", "jsondata": "json", HISTORY_FORMAT: "csv"}


def clean_asset(key: AssetKey, raw: AssetKey, model, description: str):
    """`@asset` of a clean layer: the day's raw manifest in, a frame checked against `model` out, as Parquet."""
    return asset(
        key=key,
        ins={"raw": AssetIn(raw)},
        group_name=GROUP,
        partitions_def=commerce_daily,
        io_manager_key="parquet_io_manager",
        kinds={"pandas", "parquet"},
        check_specs=[schema_check_spec(key, model)],
        metadata=model_metadata(model),
        description=f"{model.__doc__} {description}",
    )


# ---------------------------------------------------------------- rates


def history_answer(root: UPath, start: date, end: date) -> EcbAnswer | None:
    """The window from the rate history ops/history/fx_rates kept, as a data API answer would give
    it (404: no day in it); None when no history is kept or it stops before `end`."""
    path = root.joinpath(*FX_HISTORY.path, FX_HISTORY_FILE)
    if not path.exists():
        return None
    extract = eurofxref_window(path.read_bytes(), start, end)
    if extract.last_day is None or extract.last_day < end:
        return None
    params = {"startPeriod": start.isoformat(), "endPeriod": end.isoformat(), "currency": "USD"}
    return EcbAnswer(str(path), params, HISTORY_FORMAT, 200 if extract.days else 404, extract.body)


@raw_asset(
    RAW_FX,
    group=GROUP,
    partitions_def=commerce_daily,
    # The kept rate history answers for the days it covers; a day runs without it too.
    deps=[FX_HISTORY],
)
def raw_fx_rates(context: AssetExecutionContext, ecb: EcbResource, storage: StorageResource) -> Output[dict]:
    """The ECB's USD per EUR reference rates (EXR D.USD.EUR.SP00.A) of the two weeks up to the day,
    as the SDMX data API sent them (csvdata or jsondata), or, for a day the history kept by
    ops/history/fx_rates covers, the same rows taken from it without a request (format
    eurofxref-hist). Kept in the day's folder, plus this manifest. Two weeks always hold the last
    rate published before a weekend or holiday.
    """
    day = date.fromisoformat(context.partition_key)
    start, end = lookback_window(day)
    root = storage.root()
    kept = history_answer(root, start, end)
    answer = kept or ecb.client(context.log).series(start, end)
    requests = 0 if kept else 1
    folder = raw_folder(root, RAW_FX, context.partition_key)
    clear_folder(folder)
    extension = EXTENSIONS[answer.format] if answer.found else "txt"  # "No results found."
    name = write_page(folder, page_name(0, extension=extension), answer.body)
    observations = parse_rates(answer.format, answer.body) if answer.found else []
    manifest = raw_pages.manifest(
        partition=context.partition_key,
        source=answer.url,
        params=answer.params,
        folder=folder,
        pages=[name],
        records=len(published(observations)),
        requests=requests,
        format=answer.format,
        status=answer.status,
    )
    metadata = {
        "window": f"{start}..{end}",
        "status": answer.status,
        "bytes": len(answer.body),
        "format": answer.format,
        "requests": requests,
    }
    if not answer.found:
        said = answer.body[:60].decode(errors="replace")
        metadata["warning"] = f"the ECB published no rate from {start} to {end} ({said})"
    return Output(manifest, metadata=metadata)


def read_observations(manifest: dict) -> list[dict]:
    """The day's observations as kept: none when the ECB answered that it has none."""
    if manifest["status"] != 200:
        return []
    return parse_rates(manifest["format"], next(read_pages(manifest)))


@clean_asset(
    CLEAN_FX,
    RAW_FX,
    FxRateModel,
    "The rates published in the day's two-week window, exact decimals; days sent with an empty "
    "or NaN value (holidays) are left out and listed in the metadata.",
)
def clean_fx_rates(context: AssetExecutionContext, raw: dict):
    observations = read_observations(raw)
    rates = typed_frame(published(observations), FxRateModel)
    blank = sorted(str(row["rate_date"]) for row in observations if row["rate"] is None)
    yield Output(rates, metadata={**frame_metadata(rates), "days_without_value": ", ".join(blank) or "none"})
    yield schema_check(CLEAN_FX, FxRateModel, rates)


@asset(
    key=TABLES["fx_rate"],
    ins={"rates": AssetIn(CLEAN_FX)},
    group_name=GROUP,
    partitions_def=commerce_daily,
    kinds=table_kinds(),
    metadata=table_metadata(tables.fx_rate),
    description=f"{tables.fx_rate.comment} Upserted from the day's window: its only writer.",
)
def fx_rate_table(
    context: AssetExecutionContext, rates: pd.DataFrame, warehouse: WarehouseResource
) -> MaterializeResult:
    with warehouse.begin() as connection:
        result = merge(connection, tables.fx_rate, rates)
    with warehouse.begin() as connection:
        state = table_state_metadata(connection, tables.fx_rate)
    return MaterializeResult(
        metadata={
            "inserted": result.inserted,
            "updated": result.updated,
            "rates_in_window": len(rates),
            **result.path_metadata(),
            **state,
        }
    )


# ---------------------------------------------------------------- products


@raw_asset(
    RAW_PRODUCTS,
    group=GROUP,
    partitions_def=commerce_daily,
)
def raw_products(context: AssetExecutionContext, store: FakeStoreResource, storage: StorageResource) -> Output[dict]:
    """The store's products of the category STORE_CATEGORY (default Shoes, resolved by name through
    /categories), paged with offset/limit: one JSON file per page as the API sent it in the day's
    folder, plus this manifest (with the category). An empty category is a valid, empty day.
    """
    client = store.client(context.log)
    name = store.category
    category = client.category(name)
    pages = client.product_pages(int(category["id"]))
    folder = raw_folder(storage.root(), RAW_PRODUCTS, context.partition_key)
    clear_folder(folder)
    files = [write_page(folder, page_name(number), body) for number, body in enumerate(pages)]
    count = len(store_items(pages))  # every item sent: one the parser cannot read is quarantined, not lost
    # /categories, each kept page, and the empty page that ends a listing of full pages.
    ended_empty = not pages or len(store_items(pages[-1:])) == client.page_size
    manifest = raw_pages.manifest(
        partition=context.partition_key,
        source=store.resolved_url(),
        params={"categoryId": category["id"], "limit": client.page_size},
        folder=folder,
        pages=files,
        records=count,
        requests=1 + len(pages) + ended_empty,
        category={"id": category["id"], "name": category.get("name"), "slug": category.get("slug")},
        page_size=client.page_size,
        products=count,  # what every_listed_product_loaded compares against
    )
    metadata = {
        "dagster/row_count": count,
        "category": f"{category.get('name')} (id {category['id']})",
        "pages": len(files),
        **{f"auth/{event}": n for event, n in client.auth_events.items()},
    }
    if not count:
        metadata["warning"] = f"the category {name!r} has no products today: an empty day"
        context.log.warning(metadata["warning"])
    return Output(manifest, metadata=metadata)


@dataclass
class ProductDay:
    """The day's products, typed and gated: the frame to pass on, the gate's decision, its counts."""

    frame: pd.DataFrame
    verdict: Verdict
    counts: dict


def read_product_day(pages: Sequence[bytes], max_bad_share: float = quarantine.DEFAULT_MAX_BAD_SHARE) -> ProductDay:
    """Type the day's products and gate them, product by product.

    One the parser cannot read, with a value its column cannot take, or breaking a ProductModel
    row rule is rejected; the frame keeps the others (every row when the day is blocked: then
    nothing of it loads anyway).
    """
    items = store_items(pages)
    read = read_products(items)
    frame, untyped = typed_frame_and_failures(read.rows, ProductModel)
    gate = Gate(len(items), max_bad_share)
    for position, reasons in read.unreadable.items():
        gate.reject(position, reasons)
    for row, reasons in untyped.items():
        gate.reject(read.positions[row], reasons)
    gate.check("products", ProductModel, frame, read.positions)
    # Payloads from the items with plain JSON numbers: as the store sent them, not as Decimal text.
    sent = store_items(pages, parse_float=float)
    verdict = gate.verdict(lambda position: (product_key(sent[position], position), sent[position]))
    kept = frame if verdict.blocked else gate.good(frame, read.positions)
    return ProductDay(kept, verdict, gate.by_table["products"])


@clean_asset(
    CLEAN_PRODUCTS,
    RAW_PRODUCTS,
    ProductModel,
    "Typed, prices as exact decimals (half-even to the cent), checked against ProductModel. A "
    "product that breaks a row rule is quarantined (check WARN) and the others go on; a structural "
    "failure, or more than the allowed share of bad products, blocks the day.",
)
def clean_products(
    context: AssetExecutionContext,
    raw: dict,
    warehouse: WarehouseResource,
    quarantine_policy: QuarantineResource,
):
    day = read_product_day(list(read_pages(raw)), quarantine_policy.max_bad_share)
    kept = quarantine.set_aside(
        warehouse,
        day.verdict,
        domain=GROUP,
        asset=CLEAN_PRODUCTS,
        partition=context.partition_key,
        run_id=context.run_id,
        log=context.log,
    )
    quarantined = 0 if day.verdict.blocked else len(day.verdict.rejected)
    yield Output(day.frame, metadata={**frame_metadata(day.frame), "quarantined": quarantined, **kept})
    yield quarantine.gate_check(CLEAN_PRODUCTS, SCHEMA_CHECK, day.verdict, **day.counts)


def usd_per_eur(context, rates: pd.DataFrame, warehouse: WarehouseResource, day: date) -> tuple[date, object, str]:
    """The day's rate and its date: from the day's window (data API or kept history), else from fx_rate."""
    found = rate_for_day(rates, day)
    if found is not None:
        return (*found, "the day's window")
    start, _ = lookback_window(day)
    fx = tables.fx_rate.c
    with warehouse.begin() as connection:
        row = connection.execute(
            sa.select(fx.rate_date, fx.rate)
            .where(fx.base == "EUR", fx.quote == "USD", fx.rate_date.between(start, day))
            .order_by(fx.rate_date.desc())
            .limit(1)
        ).first()
    if row is not None:
        return row.rate_date, row.rate, "fx_rate table"
    raise Failure(
        description=(
            f"No USD per EUR rate was published from {start} to {day}: neither the ECB data API "
            f"nor the fx_rate table has one. Check ECB_API_URL, or load ops/history/fx_rates."
        ),
        allow_retries=False,
    )


@asset(
    key=DIFF,
    ins={
        "products": AssetIn(CLEAN_PRODUCTS),
        # The ids the store listed, readable or not: a quarantined product is not a removed one.
        "raw": AssetIn(RAW_PRODUCTS),
        "rates": AssetIn(CLEAN_FX),
        # The day before's diff holds the day before's products: the baseline. Missing for the
        # first day loaded (then the warehouse is the baseline); it orders backfills by date.
        "previous": AssetIn(DIFF, partition_mapping=PREVIOUS_DAY, metadata={"allow_missing_partitions": True}),
    },
    group_name=GROUP,
    partitions_def=commerce_daily,
    io_manager_key="parquet_io_manager",
    kinds={"pandas", "parquet"},
    check_specs=[schema_check_spec(DIFF, ProductChangeModel)],
    metadata={"reads_warehouse_tables": "product, fx_rate", **model_metadata(ProductChangeModel)},
    description=(
        "Each product of the day priced in EUR at the day's rate (or the last one published before "
        "it, whose date is kept), against the day before: new, changed, unchanged, removed, or "
        "quarantined (still listed, set aside today: kept as it was). Reads the warehouse: `fx_rate` "
        "when the day's window holds no rate, `product` as the baseline when no diff of the day "
        "before exists (the first day loaded)."
    ),
)
def product_changes(
    context: AssetExecutionContext,
    products: pd.DataFrame,
    raw: dict,
    rates: pd.DataFrame,
    previous,
    warehouse: WarehouseResource,
):
    day = date.fromisoformat(context.partition_key)
    rate_date, rate, source = usd_per_eur(context, rates, warehouse, day)
    if previous is None:
        with warehouse.begin() as connection:
            baseline = warehouse_baseline(connection)
    else:
        baseline = previous
    listed = listed_ids(store_items(list(read_pages(raw))))
    diff = diff_products(priced(products, rate_date, rate), baseline, listed)
    counts = diff["change"].value_counts()
    metadata = {
        **frame_metadata(diff),
        "rate": f"{rate} USD per EUR",
        "rate_date": str(rate_date),
        "rate_source": source,
        "baseline": "the day before" if previous is not None else "the warehouse",
        **change_counts(diff["change"], CHANGE_KINDS),
    }
    if products.empty:
        metadata["warning"] = "no product listed today: an empty day"
    context.log.info(f"{day}: {rate} USD per EUR of {rate_date} ({source}); {dict(counts)}")
    yield Output(diff, metadata=metadata)
    yield schema_check(DIFF, ProductChangeModel, diff)


# ---------------------------------------------------------------- product tables


def product_rows(diff: pd.DataFrame, day: date, active: set[int]) -> pd.DataFrame:
    """Rows to upsert: new and changed products, listed ones the warehouse lacks, and listed
    ones removed today (whole rows: Postgres checks NOT NULL before ON CONFLICT)."""
    present = diff["change"].isin(PRESENT)
    loaded = present & (diff["change"].isin(LOADABLE) | ~diff["id"].isin(active))
    removed = (diff["change"] == "removed") & diff["id"].isin(active)
    columns = [c for c in tables.product.c.keys() if c in diff.columns]
    rows = diff.loc[loaded | removed, columns].assign(as_of=day)
    removed_on = [day if gone else None for gone in removed[loaded | removed]]
    rows["removed_on"] = pd.Series(removed_on, index=rows.index, dtype=object)
    return rows


def history_snapshot(diff: pd.DataFrame) -> pd.DataFrame:
    """The listed products' prices; a quarantined product's last known ones keep its open row open."""
    listed = diff[diff["change"].isin(LISTED)]
    return listed[["id", *tables.HISTORY_COLUMNS]].rename(columns={"id": "product_id"})


@multi_asset(
    specs=[
        table_spec(
            TABLES["product"],
            tables.product,
            group=GROUP,
            deps=[DIFF, AssetDep(TABLES["product"], partition_mapping=PREVIOUS_DAY)],
            description=(
                f"{tables.product.comment} Upserted from the day's diff; "
                "a removed product keeps its row, with removed_on."
            ),
        ),
        table_spec(
            TABLES["product_price_history"],
            tables.product_price_history,
            group=GROUP,
            deps=[DIFF, AssetDep(TABLES["product_price_history"], partition_mapping=PREVIOUS_DAY)],
            description=f"{tables.product_price_history.comment} Applied day after day, in date order.",
        ),
    ],
    ins={"diff": AssetIn(DIFF)},
    partitions_def=commerce_daily,
    check_specs=[
        AssetCheckSpec(
            ONE_OPEN_ROW_CHECK,
            asset=TABLES["product_price_history"],
            description="at most one open row per product, and no empty interval",
        ),
    ],
)
def product_tables(context: AssetExecutionContext, diff: pd.DataFrame, warehouse: WarehouseResource):
    """The day's diff into `product` and `product_price_history`, in one transaction.

    A day older than the latest day loaded changes nothing: the warehouse keeps the newer state
    (the history's watermark says which day that is). A quarantined product keeps its stored row
    and open history row. Products of the day an earlier run quarantined and this one loads are
    marked replayed in the same transaction.
    """
    day = date.fromisoformat(context.partition_key)
    with warehouse.begin() as connection:
        through = scd2.applied_through(connection, tables.product_price_history, day)
        if through is not None and day < through:
            context.log.warning(f"{day} is older than the latest day loaded ({through}): nothing to change")
            late = {"late": True, "loaded_through": str(through)}
            results = {"product": late, "product_price_history": late}
        else:
            p = tables.product.c
            stored = connection.execute(sa.select(p.id, p.removed_on)).all()
            active = {row.id for row in stored if row.removed_on is None}
            loading = product_rows(diff, day, active)
            upserted = merge(connection, tables.product, loading)
            history = scd2.apply_snapshot(connection, tables.product_price_history, history_snapshot(diff), day)
            loaded = diff.loc[diff["change"].isin(PRESENT), "id"]
            replayed = quarantine.mark_replayed(
                connection, domain=GROUP, asset=CLEAN_PRODUCTS, partition=context.partition_key, loaded_keys=loaded
            )
            context.log.info(f"{day}: {upserted}; history {history}")
            results = {
                "product": {
                    "inserted": upserted.inserted,
                    "updated": upserted.updated,
                    "removed": int(loading["removed_on"].notna().sum()),
                    "listed": int(diff["change"].isin(LISTED).sum()),
                    "kept_while_quarantined": int((diff["change"] == QUARANTINED).sum()),
                    "replayed_from_quarantine": replayed,
                    "warehouse": warehouse.redacted_url(),
                    **upserted.path_metadata(),
                },
                "product_price_history": {k.split("/", 1)[1]: v for k, v in history.as_metadata().items()},
            }
    # Reported once the transaction is committed, with each table as it now stands.
    with warehouse.begin() as connection:
        results = {
            name: {**done, **table_state_metadata(connection, getattr(tables, name))} for name, done in results.items()
        }
    for name, metadata in results.items():
        yield MaterializeResult(asset_key=TABLES[name], metadata=metadata)
    with warehouse.begin() as connection:
        yield one_open_row_check(connection)
