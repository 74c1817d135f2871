"""Every asset check of the `commerce` group: one open history row per product (yielded by the tables'
multi-asset), every product priced right, at a known rate, and every product the store listed on the
day either loaded or quarantined."""

from decimal import Decimal

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    MetadataValue,
    asset_check,
)

from etl_platform.defs.commerce import tables
from etl_platform.defs.commerce.keys import CLEAN_PRODUCTS, GROUP, RAW_PRODUCTS, TABLES
from etl_platform.defs.commerce.parse import price_in_eur
from etl_platform.defs.commerce.partitions import commerce_daily
from etl_platform.lib import quarantine
from etl_platform.lib.warehouse import WarehouseResource

ONE_OPEN_ROW_CHECK = "one_open_row_per_product"
PRICE_EUR_CHECK = "price_eur_matches_rate"
HAS_RATE_CHECK = "every_product_has_a_rate"
LISTED_CHECK = "every_listed_product_loaded"
SHOWN_ROWS = 20


def one_open_row_check(connection: sa.Connection) -> AssetCheckResult:
    """At most one open row per product in `product_price_history`, and no empty interval."""
    h = tables.product_price_history.c
    several_open = connection.execute(
        sa.select(h.product_id).where(h.valid_to.is_(None)).group_by(h.product_id).having(sa.func.count() > 1)
    ).scalars().all()
    empty = connection.execute(
        sa.select(sa.func.count()).where(h.valid_to.is_not(None), h.valid_to <= h.valid_from)
    ).scalar_one()
    return AssetCheckResult(
        asset_key=TABLES["product_price_history"],
        check_name=ONE_OPEN_ROW_CHECK,
        passed=not several_open and not empty,
        metadata={"products_with_several_open_rows": len(several_open), "empty_intervals": empty},
    )


def priced_products(connection: sa.Connection) -> list:
    """Every product with the EUR/USD rate of its rate_date (None when fx_rate lacks it)."""
    p, fx = tables.product.c, tables.fx_rate
    join = tables.product.outerjoin(
        fx, sa.and_(fx.c.rate_date == p.rate_date, fx.c.base == "EUR", fx.c.quote == "USD")
    )
    return connection.execute(
        sa.select(p.id, p.price_usd, p.price_eur, p.rate_date, fx.c.rate).select_from(join).order_by(p.id)
    ).all()


def _rows(rows: list, columns: list[str]) -> MetadataValue:
    return MetadataValue.md(pd.DataFrame(rows[:SHOWN_ROWS], columns=columns).astype(str).to_markdown(index=False))


@asset_check(
    asset=TABLES["product"],
    name=PRICE_EUR_CHECK,
    partitions_def=commerce_daily,
    description="price_eur == price_usd / the USD per EUR rate of rate_date, half-even to the cent, for every product",
)
def price_eur_matches_rate(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.begin() as connection:
        rows = priced_products(connection)
    wrong = [
        (row.id, row.price_usd, row.price_eur, price_in_eur(row.price_usd, row.rate), row.rate_date, row.rate)
        for row in rows
        if row.rate is not None and Decimal(row.price_eur) != price_in_eur(row.price_usd, row.rate)
    ]
    metadata = {"products_checked": len(rows), "wrong_conversions": len(wrong)}
    if wrong:
        metadata["wrong"] = _rows(wrong, ["id", "price_usd", "price_eur", "expected_eur", "rate_date", "rate"])
    return AssetCheckResult(passed=not wrong, severity=AssetCheckSeverity.ERROR, metadata=metadata)


@asset_check(
    asset=TABLES["product"],
    name=HAS_RATE_CHECK,
    partitions_def=commerce_daily,
    description="every product's rate_date has its EUR/USD rate in fx_rate",
)
def every_product_has_a_rate(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.begin() as connection:
        rows = priced_products(connection)
    missing = [(row.id, row.rate_date) for row in rows if row.rate is None]
    metadata = {"products_checked": len(rows), "without_rate": len(missing)}
    if missing:
        metadata["products_without_rate"] = _rows(missing, ["id", "rate_date"])
    return AssetCheckResult(passed=not missing, severity=AssetCheckSeverity.ERROR, metadata=metadata)


@asset_check(
    asset=TABLES["product"],
    name=LISTED_CHECK,
    partitions_def=commerce_daily,
    additional_ins={"raw": AssetIn(RAW_PRODUCTS), "products": AssetIn(CLEAN_PRODUCTS)},
    description=(
        "products the store listed on the day == clean products + quarantined ones, "
        "and every clean product has its row in `product`: none is lost on the way"
    ),
)
def every_listed_product_loaded(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, raw: dict, products: pd.DataFrame
) -> AssetCheckResult:
    ids = [int(id_) for id_ in products["id"]]
    p = tables.product.c
    with warehouse.begin() as connection:
        # A row, whatever its removed_on: a later day may have removed a product this day listed.
        stored = connection.execute(sa.select(sa.func.count()).where(p.id.in_(ids))).scalar_one() if ids else 0
        held = quarantine.open_count(connection, GROUP, context.partition_key, CLEAN_PRODUCTS)
    counts = {"listed_at_source": raw["products"], "clean": len(ids), "in_product_table": stored, "quarantined": held}
    passed = raw["products"] == len(ids) + held and stored == len(ids)
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata=counts,
        description=None if passed else f"products lost on the way: {counts}",
    )
