"""Per-run diff: each sale of the run against the status the warehouse held before it."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from etl_platform.defs.sales import tables
from etl_platform.defs.sales.schemas import KEY
from etl_platform.lib.key_lookups import select_in_chunks
from etl_platform.lib.schema_types import TEXT


def known_statuses(connection: sa.Connection, keys: list[str]) -> dict[str, str | None]:
    """transaction -> status in `sale` for these transactions (nothing when `sale` is not there yet)."""
    if not sa.inspect(connection).has_table(tables.sale.name):
        return {}
    sale = tables.sale
    rows = select_in_chunks(
        connection, lambda chunk: sa.select(sale.c[KEY], sale.c.purchase_status).where(sale.c[KEY].in_(chunk)), keys
    )
    return {key: status for key, status in rows}


def status_changes(sales: pd.DataFrame, known: dict[str, str | None]) -> pd.DataFrame:
    """Each sale against the warehouse's status before the run (`known`: transaction -> status)."""
    keys = sales[KEY].astype(object).tolist()
    status = sales["purchase_status"].astype(object).where(sales["purchase_status"].notna(), None).tolist()
    previous = [known.get(k) for k in keys]
    change = [
        "new" if k not in known else "status_changed" if p != s else "known" for k, p, s in zip(keys, previous, status)
    ]
    return pd.DataFrame(
        {
            KEY: pd.array(keys, dtype=TEXT),
            "change": pd.array(change, dtype=TEXT),
            "previous_status": pd.array(previous, dtype=TEXT),
            "status": pd.array(status, dtype=TEXT),
        }
    )
