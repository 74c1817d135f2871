"""Generic flattening of nested JSON records into flat tables (pure, no I/O).

``flatten(records, key=..., explode=...)`` turns each record into one row of
the *root* table:

* nested objects become path keys joined with ``sep``
  (``{"purchase": {"price": {"value": 1}}}`` -> ``purchase_price_value``);
* lists of scalars, and lists not chosen for exploding, become JSON text
  (object keys sorted, so the text does not depend on key order);
* a list whose path is in ``explode`` becomes a *child table* named after its
  path: one row per element, carrying the root key column(s), the positions of
  any exploded ancestor lists (``<ancestor>_position``) and the element's own
  ``position`` (0-based); its column is left out of the parent table.

Columns are the union over all records: key columns first, in the order given,
then the remaining paths sorted; a record missing a path gets ``None``. The
same records therefore always give the same tables and columns, whatever the
key order inside each record or the order of the records' keys.

Paths may be given as flat names (``"purchase_transaction"``) or as tuples of
keys (``("purchase", "transaction")``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

POSITION = "position"

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


@dataclass(frozen=True)
class FlatTables:
    """The root table and the child tables (keyed by list path, sorted)."""

    root: FlatTable
    children: dict[str, FlatTable]

    @property
    def tables(self) -> dict[str, FlatTable]:
        """Every table by name: the root first, then the children by path."""
        return {self.root.name: self.root, **self.children}

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table as a DataFrame, by name (root first)."""
        return {name: table.to_frame() for name, table in self.tables.items()}


def to_json_text(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _path_name(path: PathLike, sep: str) -> str:
    return sep.join(path) if isinstance(path, tuple) else path


class _Flattener:
    def __init__(self, key: tuple[str, ...], explode: frozenset[str], sep: str):
        self.key = key
        self.explode = explode
        self.sep = sep
        self.child_rows: dict[str, list[dict[str, Any]]] = {path: [] for path in sorted(explode)}
        self.child_links: dict[str, tuple[str, ...]] = {}  # path -> link columns

    def row(self, obj: Mapping[str, Any], prefix: str, link: dict[str, Any]) -> dict[str, Any]:
        """Flatten ``obj`` into a new row; exploded lists go to the child tables."""
        out: dict[str, Any] = {}
        self._walk(obj, prefix, "", out, link)
        return out

    def _walk(self, obj: Mapping[str, Any], prefix: str, local: str, out: dict, link: dict) -> None:
        # ``prefix`` is the full path from the root (for matching ``explode``);
        # ``local`` is the column name inside the current table.
        for name in sorted(obj):
            if not isinstance(name, str):
                raise TypeError(f"object keys must be strings, got {name!r} under {prefix or 'the root'}")
            value = obj[name]
            full = f"{prefix}{self.sep}{name}" if prefix else name
            column = f"{local}{self.sep}{name}" if local else name
            if isinstance(value, Mapping):
                self._walk(value, full, column, out, link)
            elif isinstance(value, list) and full in self.explode:
                self._explode(full, value, link)
            else:
                if isinstance(value, (list, tuple)):
                    value = to_json_text(value)
                if column in out:
                    raise ValueError(f"two paths flatten to the same column {column!r}")
                out[column] = value

    def _explode(self, path: str, items: list, link: dict[str, Any]) -> None:
        link_columns = (*link, POSITION)
        self.child_links.setdefault(path, link_columns)
        rows = self.child_rows[path]
        for position, item in enumerate(items):
            own_link = {**link, f"{path}{self.sep}{POSITION}": position}
            element = item if isinstance(item, Mapping) else {"value": item}
            fields = self.row(element, path, own_link)
            clash = set(fields) & set(link_columns)
            if clash:
                raise ValueError(f"child table {path!r}: element field(s) {sorted(clash)} clash with link columns")
            rows.append({**link, POSITION: position, **fields})


def _table(name: str, lead: tuple[str, ...], rows: list[dict[str, Any]]) -> FlatTable:
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    columns = (*lead, *sorted(seen - set(lead)))
    return FlatTable(name, columns, [{c: row.get(c) for c in columns} for row in rows])


def flatten(
    records: Iterable[Mapping[str, Any]],
    key: Collection[PathLike] = (),
    explode: Collection[PathLike] = (),
    *,
    name: str = "root",
    sep: str = "_",
) -> FlatTables:
    """Flatten ``records`` into a root table ``name`` and one child table per ``explode`` path.

    ``key``: the root columns identifying a record (flat names or key tuples);
    they lead the root table and link the child rows, and must be present and
    non-null in every record when ``explode`` is used. Lists at ``explode``
    paths (full paths from the root, also inside exploded elements) become
    child tables; every other list becomes JSON text. Elements of an exploded
    list that are not objects become a ``value`` column. A child table exists
    for every ``explode`` path, even when empty.
    """
    key_cols = tuple(_path_name(k, sep) for k in key)
    explode_paths = frozenset(_path_name(p, sep) for p in explode)
    if explode_paths and not key_cols:
        raise ValueError("explode needs a key to link child rows to their parent")
    if name in explode_paths:
        raise ValueError(f"root table name {name!r} is also an explode path")
    flattener = _Flattener(key_cols, explode_paths, sep)
    root_rows = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"record {index} is {type(record).__name__}, not an object")
        # Child rows are written while walking, before the key is known: patch it in afterwards.
        marks = {path: len(rows) for path, rows in flattener.child_rows.items()}
        row = flattener.row(record, "", dict.fromkeys(key_cols))
        if explode_paths:
            for column in key_cols:
                if row.get(column) is None:
                    raise ValueError(f"record {index} has no value for key column {column!r}")
            for path, rows in flattener.child_rows.items():
                for child in rows[marks[path]:]:
                    child.update((column, row[column]) for column in key_cols)
        root_rows.append(row)
    root = _table(name, key_cols, root_rows)
    children = {}
    for path, rows in flattener.child_rows.items():
        lead = flattener.child_links.get(path) or _default_link(path, key_cols, explode_paths, sep)
        children[path] = _table(path, lead, rows)
    return FlatTables(root, children)


def _default_link(path: str, key: tuple[str, ...], explode: frozenset[str], sep: str) -> tuple[str, ...]:
    """Link columns of a child table that got no rows: key, exploded ancestors' positions, position."""
    ancestors = sorted((p for p in explode if path.startswith(p + sep)), key=len)
    return (*key, *(f"{a}{sep}{POSITION}" for a in ancestors), POSITION)
