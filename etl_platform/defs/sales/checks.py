"""Every asset check of the `sales` group. The run's loaded check is yielded by `sale_table`, in its
transaction; the clean layer's checks are the shared ones of `lib/frame_checks.py` and `lib/quarantine.py`."""

import pandas as pd
import sqlalchemy as sa
from dagster import AssetCheckResult

from etl_platform.defs.sales.keys import CLEAN_SALES, GROUP
from etl_platform.defs.sales.schemas import KEY
from etl_platform.lib import quarantine
from etl_platform.lib.key_lookups import count_in_chunks

LOADED_CHECK = "every_fetched_sale_loaded"


def found_in_sale(connection: sa.Connection, sale: sa.Table, sales: pd.DataFrame) -> int:
    """How many of the run's sales `sale` holds."""
    return count_in_chunks(
        connection,
        lambda keys: sa.select(sa.func.count()).select_from(sale).where(sale.c[KEY].in_(keys)),
        sales[KEY].dropna().astype(str).tolist(),
    )


def loaded_check(
    connection: sa.Connection, sale: sa.Table, sales: pd.DataFrame, fetched: int, window: str
) -> AssetCheckResult:
    """Every sale fetched in the window is in `sale` or quarantined: fetched == loaded + quarantined.

    `fetched` is counted from the pages as sent, not from the layers this checks.
    """
    loaded = found_in_sale(connection, sale, sales)
    quarantined = quarantine.open_count(connection, GROUP, window, CLEAN_SALES)
    counts = {"fetched_sales": fetched, "run_sales": len(sales), "found_in_sale": loaded, "quarantined": quarantined}
    passed = fetched == loaded + quarantined
    return AssetCheckResult(
        check_name=LOADED_CHECK,
        passed=passed,
        metadata=counts,
        description=None if passed else f"fetched != found in sale + quarantined: {counts}",
    )
