"""Warehouse table of the `sales` group (DESIGN.md: `sale(purchase_transaction text primary key, ...)`).

Declared from the Pandera model, never column by column: one column per documented flattened
path, typed as the model types it. Columns the source adds later are added by the generic
upsert's schema evolution (`merge(..., evolve_schema=True)`).
"""

import sqlalchemy as sa

from etl_platform.defs.sales.schemas import KEY, SaleModel

metadata = sa.MetaData()


def sql_type(dtype: str) -> sa.types.TypeEngine:
    """SQL type of a model dtype: UTC timestamps, NUMERIC money, BIGINT, BOOLEAN, TEXT."""
    if dtype.startswith("datetime64"):
        return sa.DateTime(timezone=True)
    if dtype.startswith("Decimal"):
        return sa.Numeric()
    if dtype == "Int64":
        return sa.BigInteger()
    if dtype == "boolean":
        return sa.Boolean()
    return sa.Text()


sale = sa.Table(
    "sale",
    metadata,
    *(
        sa.Column(name, sql_type(str(column.dtype)), primary_key=name == KEY, comment=column.description)
        for name, column in SaleModel.to_schema().columns.items()
    ),
    comment="One row per Hotmart sale (purchase_transaction), columns named after the flattened JSON paths; "
    "widened when the source adds fields.",
)
