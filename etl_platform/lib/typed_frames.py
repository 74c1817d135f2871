"""Rows -> a DataFrame with exactly the columns and dtypes a Pandera model declares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa


class TypingError(ValueError):
    """A value could not be read as its column's type; the message names column and values."""


def typed_frame(rows: Sequence[dict[str, Any]], model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """Build the frame a model describes; timestamps become UTC whatever offset they carry.

    A value that cannot be converted raises `TypingError` instead of silently turning null;
    range and pattern rules are left to the model's check, which reports failing rows.
    """
    schema = model.to_schema()
    frame = pd.DataFrame.from_records(list(rows), columns=list(schema.columns))
    for name, column in schema.columns.items():
        frame[name] = _convert(frame[name], str(column.dtype), name)
    return frame


def _convert(series: pd.Series, dtype: str, name: str) -> pd.Series:
    if dtype.startswith("datetime64"):
        utc = "UTC" in dtype
        converted = _to_utc(series) if utc else pd.to_datetime(series, format="ISO8601", errors="coerce")
        if not utc:
            converted = converted.astype(dtype)
        bad = series[converted.isna() & series.notna()]
        if len(bad):
            raise TypingError(f"column {name}: {len(bad)} value(s) are not ISO-8601 timestamps: {list(bad[:5])}")
        return converted.astype(dtype) if utc else converted
    if dtype in ("str", "object"):
        # Parsers hand over None for missing text; only a float NaN needs turning into None.
        if series.dtype == object:
            return series
        return series.astype(object).where(series.notna(), None)
    try:
        return series.astype(dtype)
    except (TypeError, ValueError) as error:
        raise TypingError(f"column {name}: cannot read values as {dtype}: {error}") from error


# A time of day followed by `Z` or a `+hh:mm` / `-hhmm` style offset.
_HAS_OFFSET = r"[Tt ]\d{2}[\d:.,]*\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"


def _to_utc(series: pd.Series) -> pd.Series:
    # pandas' ISO-8601 parser carries the offset of one value over to the naive values after
    # it, so values with and without an offset are parsed apart; naive ones are UTC.
    aware = series.astype(object).map(lambda v: isinstance(v, str)).astype(bool)
    aware &= series.where(aware, "").astype(str).str.contains(_HAS_OFFSET, regex=True)
    if not aware.any() or aware.all():
        return pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")
    converted = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    for part in (aware, ~aware):
        converted[part] = pd.to_datetime(series[part], utc=True, format="ISO8601", errors="coerce")
    return converted
