"""Per-day product diff: each product of the day, priced in EUR, against the day before."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from etl_platform.defs.commerce.parse import price_in_eur
from etl_platform.defs.commerce.schemas import ProductChangeModel
from etl_platform.defs.commerce.tables import COMPARED, product
from etl_platform.lib.changes import CHANGED, LOADABLE, NEW, QUARANTINED, REMOVED, UNCHANGED, classify, unsent
from etl_platform.lib.typed_frames import typed_frame

# LOADABLE and QUARANTINED are lib/changes.py's, named here too for the tables asset.
__all__ = ["LISTED", "LOADABLE", "PRESENT", "QUARANTINED", "diff_products", "priced", "warehouse_baseline"]
# Sent today.
PRESENT = (NEW, CHANGED, UNCHANGED)
# Still listed at the source, quarantined ones too (set aside today: neither loaded nor removed).
LISTED = (*PRESENT, QUARANTINED)


def priced(products: pd.DataFrame, rate_date: date, usd_per_eur: Decimal) -> pd.DataFrame:
    """The day's products with `price_eur` (at `usd_per_eur`) and the rate's `rate_date`."""
    frame = products.copy()
    eur = [price_in_eur(p, usd_per_eur) for p in frame["price_usd"]]
    frame["price_eur"] = pd.Series(eur, index=frame.index, dtype=object)
    frame["rate_date"] = pd.Series([rate_date] * len(frame), index=frame.index, dtype=object)
    return frame


def warehouse_baseline(connection: sa.Connection) -> pd.DataFrame:
    """The listed products the warehouse holds, in the diff's shape (for a day without a previous diff)."""
    columns = [c for c in ProductChangeModel.to_schema().columns if c != "change"]
    listed = sa.select(*(product.c[c] for c in columns)).where(product.c.removed_on.is_(None))
    rows = connection.execute(listed).mappings()
    return typed_frame([dict(row) | {"change": UNCHANGED} for row in rows], ProductChangeModel)


def _records(frame: pd.DataFrame) -> dict:
    plain = frame.astype(object).where(frame.notna(), None)
    return {int(row["id"]): row for row in plain.to_dict("records")}


def diff_products(today: pd.DataFrame, baseline: pd.DataFrame, listed: Collection[int]) -> pd.DataFrame:
    """new (not listed before), changed (a compared column differs), unchanged, and, for a product
    listed before but missing from today's rows: quarantined when the store still `listed` its id
    (it was set aside, unreadable), else removed; both kept with their last known values."""
    before = _records(baseline[baseline["change"] != REMOVED]) if len(baseline) else {}
    now = _records(today)
    stored = [key in before for key in now]
    same = [key in before and all(before[key][c] == row[c] for c in COMPARED) for key, row in now.items()]
    columns = list(ProductChangeModel.to_schema().columns)
    rows = [row | {"change": change} for row, change in zip(now.values(), classify(stored, same))]
    rows += [row | {"change": unsent(key in listed)} for key, row in before.items() if key not in now]
    frame = typed_frame(sorted(rows, key=lambda r: r["id"]), ProductChangeModel)
    return frame[columns].reset_index(drop=True)
