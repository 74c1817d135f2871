"""typed_frame with exact columns: Decimal and date values are kept as the objects they are."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import pandera.pandas as pa
import pytest
from pandera.engines import pandas_engine
from pandera.typing import Series

from etl_platform.lib.schema_types import Day, Int64, Text
from etl_platform.lib.typed_frames import TypingError, typed_frame, typed_frame_and_failures

Money = Annotated[pandas_engine.Decimal, 12, 2, "ROUND_HALF_EVEN"]


class Price(pa.DataFrameModel):
    product_id: Series[Int64] = pa.Field(gt=0)
    title: Series[Text] = pa.Field(nullable=True)
    price: Series[Money] = pa.Field(ge=0, nullable=True)
    on: Series[Day] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False


def test_decimals_and_dates_are_kept_exact_and_missing_ones_are_none():
    rows = [
        {"product_id": 1, "title": "a", "price": Decimal("0.10"), "on": date(2024, 6, 7)},
        {"product_id": 2, "title": None},
    ]

    frame = typed_frame(rows, Price)

    assert frame["price"].tolist() == [Decimal("0.10"), None] and frame["on"].tolist() == [date(2024, 6, 7), None]
    assert {str(t) for t in frame[["price", "on"]].dtypes} == {"object"}
    Price.validate(frame)


def test_a_value_its_column_cannot_take_is_reported_beside_exact_columns():
    rows = [{"product_id": "x1", "price": Decimal("1.00")}, {"product_id": 2, "price": Decimal("2.00")}]

    frame, failures = typed_frame_and_failures(rows, Price)

    assert frame["product_id"].isna().tolist() == [True, False]
    assert failures == {0: ["product_id: 'x1' is not a Int64 value"]}
    with pytest.raises(TypingError, match="column product_id"):
        typed_frame(rows, Price)
