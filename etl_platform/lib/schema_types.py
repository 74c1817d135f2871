"""Column types shared by the Pandera models of every domain, and the pandas dtypes they stand for."""

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.engines import pandas_engine

# Arrow-backed text: a fraction of the memory of Python str objects, and it goes to Parquet
# and COPY without conversion.
Text = Annotated[pd.StringDtype, "pyarrow", pd.NA]
UtcTimestamp = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]
# Nullable: a missing integer or boolean stays missing rather than turning the column to float/object.
Int64 = pd.Int64Dtype
Boolean = pd.BooleanDtype
# `datetime.date` objects (Parquet date32): a day, with no time nor zone to get wrong.
Day = pandas_engine.Date

# The dtypes of Text and UtcTimestamp, for frames built without a model.
TEXT = pd.StringDtype("pyarrow")
UTC_NS = "datetime64[ns, UTC]"



class StrictModel(pa.DataFrameModel):
    """Base of a model whose frames hold exactly its columns, already of its types.

    Pandera takes `Config` from a parent model, not from a plain class a `Config` inherits from:
    strictness declared that way silently did not apply.
    """

    class Config:
        strict = True
        coerce = False
