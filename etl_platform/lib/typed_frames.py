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

    Decimal and date columns keep their Python objects (exact values; the model checks them).

    A value that cannot be converted raises `TypingError` instead of silently turning null;
    range and pattern rules are left to the model's check, which reports failing rows.
    """
    frame, failing = _typed(rows, model)
    for name, (dtype, values) in failing.items():
        if dtype.startswith("datetime64"):
            raise TypingError(f"column {name}: {len(values)} value(s) are not ISO-8601 timestamps: {list(values[:5])}")
        raise TypingError(f"column {name}: cannot read values as {dtype}: {list(values[:5])}")
    return frame


def typed_frame_and_failures(
    rows: Sequence[dict[str, Any]], model: type[pa.DataFrameModel]
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Like `typed_frame`, but a value its column cannot take is set null and reported by row.

    The reasons (row position -> texts) let a caller quarantine those rows and load the rest.
    """
    frame, failing = _typed(rows, model)
    bad: dict[int, list[str]] = {}
    for name, (dtype, values) in failing.items():
        for position, value in values.items():
            bad.setdefault(position, []).append(f"{name}: {value!r} is not a {dtype} value")
    return frame, bad


def _typed(rows: Sequence[dict[str, Any]], model: type[pa.DataFrameModel]):
    """The typed frame, and for each column with values it cannot take: (dtype, those values by row)."""
    schema = model.to_schema()
    frame = pd.DataFrame.from_records(list(rows), columns=list(schema.columns))
    failing: dict[str, tuple[str, pd.Series]] = {}
    for name, column in schema.columns.items():
        frame[name], values = _convert(frame[name], str(column.dtype), name)
        if len(values):
            failing[name] = (str(column.dtype), values)
    return frame, failing


def _convert(series: pd.Series, dtype: str, name: str) -> tuple[pd.Series, pd.Series]:
    """The column converted, and the values that could not be (by position), set null in it."""
    if dtype.startswith("datetime64"):
        utc = "UTC" in dtype
        converted = _to_utc(series) if utc else pd.to_datetime(series, format="ISO8601", errors="coerce")
        converted = converted.astype(dtype)
        return converted, series[converted.isna() & series.notna()]
    if dtype.startswith("Decimal") or dtype == "date":
        # Exact `Decimal` / `datetime.date` objects: pandas has no dtype that holds them as they are.
        return series.astype(object).where(series.notna(), None), series.iloc[:0]
    if dtype in ("str", "object"):
        # Parsers hand over None for missing text; only a float NaN needs turning into None.
        if series.dtype == object:
            return series, series.iloc[:0]
        return series.astype(object).where(series.notna(), None), series.iloc[:0]
    try:
        return series.astype(dtype), series.iloc[:0]
    except (TypeError, ValueError):
        pass
    # Some values do not fit: convert one by one, only on this (rare) path.
    fits = series.map(lambda value: _fits(value, dtype))
    kept = series.where(fits, None)
    try:
        return kept.astype(dtype), series[~fits]
    except (TypeError, ValueError) as error:
        raise TypingError(f"column {name}: cannot read values as {dtype}: {error}") from error


def _fits(value: Any, dtype: str) -> bool:
    try:
        pd.Series([value]).astype(dtype)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


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
