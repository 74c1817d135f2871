"""Column types shared by the Pandera models of every domain, and the pandas dtypes they stand for."""

from typing import Annotated

import pandas as pd
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

