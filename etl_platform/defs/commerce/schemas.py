"""Pandera models of the `commerce` group's typed layers: the gate every clean and diff frame passes.

Money and rates are `Decimal` objects (Parquet `decimal128`), dates `datetime.date` objects
(Parquet `date32`): exact values from the source's text to the warehouse's `numeric`.
"""

from typing import Annotated

import pandera.pandas as pa
from pandera.engines import pandas_engine
from pandera.typing import Series

from etl_platform.lib.changes import QUARANTINED, REMOVED, change_kinds
from etl_platform.lib.schema_types import Day, Int64, StrictModel, Text, UtcTimestamp

Money = Annotated[pandas_engine.Decimal, 12, 2, "ROUND_HALF_EVEN"]
# ECB reference rates have at most 6 decimals and 7 significant digits (1999-2025).
Rate = Annotated[pandas_engine.Decimal, 18, 6, "ROUND_HALF_EVEN"]
CHANGE_KINDS = change_kinds(REMOVED, QUARANTINED)



class FxRateModel(StrictModel):
    """One row per published rate (a day without a published value has no row)."""

    rate_date: Series[Day] = pa.Field(description="the day the ECB published the rate")
    base: Series[Text] = pa.Field(str_matches=r"^[A-Z]{3}$", description="base currency (EUR)")
    quote: Series[Text] = pa.Field(str_matches=r"^[A-Z]{3}$", description="quoted currency")
    rate: Series[Rate] = pa.Field(gt=0, description="units of quote per 1 base")

    class Config:
        description = "ECB euro reference rates"
        unique = ["rate_date", "base", "quote"]


class ProductModel(StrictModel):
    """One row per product listed in the category on the day."""

    id: Series[Int64] = pa.Field(gt=0, unique=True, description="product id in the store")
    title: Series[Text] = pa.Field(description="product title")
    slug: Series[Text] = pa.Field(nullable=True, description="URL slug")
    description: Series[Text] = pa.Field(nullable=True, description="product description")
    category: Series[Text] = pa.Field(description="category name")
    category_id: Series[Int64] = pa.Field(gt=0, description="category id in the store")
    price_usd: Series[Money] = pa.Field(ge=0, description="price in US dollars, half-even to the cent")
    images: Series[Text] = pa.Field(nullable=True, description="image URLs as JSON text")
    created_at: Series[UtcTimestamp] = pa.Field(nullable=True, description="creationAt (UTC)")
    updated_at: Series[UtcTimestamp] = pa.Field(nullable=True, description="updatedAt (UTC)")

    class Config:
        description = "store products of one category"


class ProductChangeModel(ProductModel):
    """Each product of the day, priced in EUR, against the day before: new, changed, unchanged,
    removed (listed the day before, missing now), or quarantined (listed the day before and still
    listed, but unreadable today); the last two with their last known values."""

    price_eur: Series[Money] = pa.Field(ge=0, description="price_usd / rate, half-even to the cent")
    rate_date: Series[Day] = pa.Field(description="publication day of the EUR/USD rate used")
    change: Series[Text] = pa.Field(isin=CHANGE_KINDS, description="what the day says of the product")

    class Config:
        description = "per-day product changes"
