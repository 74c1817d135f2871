"""Per-run diff: each sale of the run against the row the warehouse held before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from etl_platform.defs.sales import tables
from etl_platform.defs.sales.schemas import KEY
from etl_platform.lib.changes import LOADABLE, classify, same_values
from etl_platform.lib.key_lookups import select_in_chunks
from etl_platform.lib.schema_types import TEXT


def stored_sales(connection: sa.Connection, sales: pd.DataFrame) -> pd.DataFrame:
    """The rows `sale` holds for the run's sales, in the run's columns `sale` has, values as the driver
    returns them (no row when `sale` is not there yet)."""
    if not sa.inspect(connection).has_table(tables.sale.name):
        return pd.DataFrame({KEY: pd.Series(dtype=object)})
    # As it is now: schema evolution adds the columns the source adds.
    sale = sa.Table(tables.sale.name, sa.MetaData(), autoload_with=connection)
    columns = [c for c in sales.columns if c in sale.c]
    rows = select_in_chunks(
        connection,
        lambda chunk: sa.select(*(sale.c[c] for c in columns)).where(sale.c[KEY].in_(chunk)),
        sales[KEY].dropna().astype(str).tolist(),
    )
    return pd.DataFrame([tuple(row) for row in rows], columns=columns, dtype=object)


def diff_sales(sales: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """Each sale of the run: new (not in `sale`), changed (a column loaded into `sale` differs from the
    stored row: a refund, a correction, a field the source added) or unchanged; with the status
    before the run and now."""
    keys = sales[KEY].astype(object).tolist()
    before = stored.set_index(KEY).reindex(keys)
    held = pd.Index(keys).isin(stored[KEY])  # hashed: np.isin on text is quadratic
    same = np.ones(len(sales), dtype=bool)
    for column in sales.columns.drop(KEY):
        # A column `sale` does not have yet holds nulls for every stored sale.
        previous = before[column] if column in before.columns else pd.Series([None] * len(sales), dtype=object)
        same &= same_values(previous, sales[column])
    previous_status = before["purchase_status"] if "purchase_status" in before.columns else pd.Series(dtype=object)
    return pd.DataFrame(
        {
            KEY: pd.array(keys, dtype=TEXT),
            "change": pd.array(classify(held, same), dtype=TEXT),
            "previous_status": pd.array(previous_status.reindex(keys).tolist(), dtype=TEXT),
            "status": sales["purchase_status"].astype(TEXT).array,
        }
    )


def loadable_sales(sales: pd.DataFrame, diff: pd.DataFrame) -> pd.DataFrame:
    """The run's sales the diff says are new or changed: the frame itself when all are (no copy).

    A sale the diff does not hold is loaded too: loading a sale again writes nothing, skipping it could lose it.
    """
    skipped = sales[KEY].isin(diff.loc[~diff["change"].isin(LOADABLE), KEY])
    return sales[~skipped] if skipped.any() else sales
