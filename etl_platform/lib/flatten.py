"""Generic flattening of nested JSON records into one flat table (pure, no I/O).

``flatten(records, key=...)`` turns each record into one row:

* nested objects become path keys joined with ``sep``
  (``{"purchase": {"price": {"value": 1}}}`` -> ``purchase_price_value``);
* lists become JSON text (object keys sorted, so the text does not depend on key order).

Columns are the union over all records: key columns first, in the order given,
then the remaining paths sorted; a record missing a path gets ``None``. The
same records therefore always give the same table and columns, whatever the
key order inside each record or the order of the records' keys.

Paths may be given as flat names (``"purchase_transaction"``) or as tuples of
keys (``("purchase", "transaction")``). Child tables are not exploded here: the
one nested source that has them (NVD) maps its lists to modelled tables with
renamed, version-specific columns in ``defs/cve/parse.py``, which a generic
explosion would not give.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

PathLike = str | tuple[str, ...]


@dataclass(frozen=True)
class FlatTable:
    """One flat table: ``columns`` in their stable order and ``rows`` holding every column."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with exactly ``columns`` (object-typed where values are mixed)."""
        return pd.DataFrame.from_records(self.rows, columns=list(self.columns))

    def __len__(self) -> int:
        return len(self.rows)

    def to_storable_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame any file format holds: see :func:`storable_frame`."""
        return storable_frame(self.to_frame())


def storable_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column whose values mix kinds (text and numbers, say) as JSON text.

    A source may send ``1`` in one record and ``"1"`` or ``{...}``-free text in another; Parquet and
    Arrow need one type per column. Integers mixed with floats stay numbers (pandas makes them
    floats); ``None`` stays null. Columns of one kind are returned unchanged.
    """
    mixed = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        kinds = {_kind(v) for v in column if v is not None and v == v}  # v == v: not NaN
        if len(kinds) > 1:
            mixed[name] = column.map(lambda v: v if v is None or isinstance(v, str) else to_json_text(v))
    return frame.assign(**mixed) if mixed else frame


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def to_json_text(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _path_name(path: PathLike, sep: str) -> str:
    return sep.join(path) if isinstance(path, tuple) else path


def _flat_row(obj: Mapping[str, Any], sep: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _walk(obj, "", sep, out)
    return out


def _walk(obj: Mapping[str, Any], prefix: str, sep: str, out: dict[str, Any]) -> None:
    for name in sorted(obj):
        if not isinstance(name, str):
            raise TypeError(f"object keys must be strings, got {name!r} under {prefix or 'the root'}")
        value = obj[name]
        column = f"{prefix}{sep}{name}" if prefix else name
        if isinstance(value, Mapping):
            _walk(value, column, sep, out)
            continue
        if isinstance(value, (list, tuple)):
            value = to_json_text(value)
        if column in out:
            raise ValueError(f"two paths flatten to the same column {column!r}")
        out[column] = value


def flatten(
    records: Iterable[Mapping[str, Any]], key: Collection[PathLike] = (), *, name: str = "root", sep: str = "_"
) -> FlatTable:
    """Flatten ``records`` into one table ``name``; ``key``'s columns (flat names or key tuples) lead it."""
    key_cols = tuple(_path_name(k, sep) for k in key)
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"record {index} is {type(record).__name__}, not an object")
        rows.append(_flat_row(record, sep))
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    columns = (*key_cols, *sorted(seen - set(key_cols)))
    return FlatTable(name, columns, [{c: row.get(c) for c in columns} for row in rows])
