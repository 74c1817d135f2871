"""The shared column types declare the dtypes their names say."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from etl_platform.lib.schema_types import TEXT, UTC_NS, Boolean, Day, Int64, StrictModel, Text, UtcTimestamp


class Row(pa.DataFrameModel):
    text: Series[Text]
    at: Series[UtcTimestamp]
    count: Series[Int64]
    flag: Series[Boolean]
    day: Series[Day]


def test_each_type_declares_its_pandas_dtype():
    dtypes = {name: str(column.dtype) for name, column in Row.to_schema().columns.items()}

    assert TEXT == "string[pyarrow]"
    assert dtypes == {"text": "string[pyarrow]", "at": UTC_NS, "count": "Int64", "flag": "boolean", "day": "date"}



def test_a_strict_model_refuses_a_column_it_does_not_declare():
    class Item(StrictModel):
        id: Series[int]

        class Config:
            description = "a subclass's own Config keeps the strictness"

    with pytest.raises((pa.errors.SchemaError, pa.errors.SchemaErrors), match="column .extra. not in"):
        Item.validate(pd.DataFrame({"id": [1], "extra": [2]}))
