"""The shared column types declare the dtypes their names say."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from etl_platform.lib.schema_types import TEXT, UTC_NS, Boolean, Day, Int64, Text, UtcTimestamp


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

