"""Type-2 history ("slowly changing dimension") for any declared table.

A history table declares what it needs once, on its SQLAlchemy `Table`:

    info={"scd2": {"key": ("product_id",), "valid_from": "valid_from", "valid_to": "valid_to",
                   "tracked": ("price_usd", ...)}}   # tracked: optional, default every other column

and its primary key is the key plus `valid_from`. A row holds the values of one key during
`[valid_from, valid_to)`; the open (current) row has `valid_to` null.

`apply_snapshot(connection, table, snapshot, as_of)` brings the table to what a complete
snapshot of the source says on `as_of`:
- a key seen for the first time (or again, after it was removed) opens a row;
- a key whose tracked values changed has its open row closed at `as_of` and a new one opened;
- a key missing from the snapshot has its open row closed at `as_of`;
- nothing else is written, so applying the same snapshot twice changes nothing.

Applying the latest day again with other values rewrites that day's rows (a day has one truth,
and no empty `[d, d)` interval is ever left). The days applied are remembered per table
(`scd2_watermark`): a day older than the latest one applied is refused as late and writes
nothing, so that a re-run or an out-of-order backfill never rewrites newer history. Days must
therefore be applied in date order (the caller's scheduling guarantees it). The caller owns
the transaction.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

_metadata = sa.MetaData()
watermark = sa.Table(
    "scd2_watermark",
    _metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("applied_through", sa.Text, nullable=False, comment="ISO date (or timestamp) of the latest day applied"),
    comment="The latest day each type-2 history table was brought up to; older days never rewrite it.",
)


class Scd2Error(ValueError):
    """The table or the snapshot does not fit type-2 history as declared."""


@dataclass(frozen=True)
class Scd2Spec:
    key: tuple[str, ...]
    tracked: tuple[str, ...]
    valid_from: str
    valid_to: str


@dataclass
class Scd2Result:
    """What one application did, for materialization metadata."""

    table: str
    as_of: Any
    applied_through: Any = None
    late: bool = False
    opened: int = 0
    closed: int = 0
    reopened: int = 0
    rewritten: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        return self.opened + self.closed + self.reopened + self.rewritten + self.deleted

    def as_metadata(self) -> dict[str, Any]:
        return {
            f"{self.table}/opened": self.opened,
            f"{self.table}/closed": self.closed,
            f"{self.table}/reopened": self.reopened,
            f"{self.table}/rewritten": self.rewritten,
            f"{self.table}/deleted": self.deleted,
            f"{self.table}/unchanged": self.unchanged,
            f"{self.table}/late": self.late,
            f"{self.table}/applied_through": str(self.applied_through),
        }


def spec_of(table: sa.Table) -> Scd2Spec:
    """The declared history layout of a table; `Scd2Error` when it is missing or inconsistent."""
    declared = table.info.get("scd2")
    if not declared:
        raise Scd2Error(f"table {table.name} declares no info['scd2'] (key, valid_from, valid_to)")
    key = tuple(declared["key"])
    valid_from, valid_to = declared.get("valid_from", "valid_from"), declared.get("valid_to", "valid_to")
    for name in (*key, valid_from, valid_to):
        if name not in table.c:
            raise Scd2Error(f"table {table.name} has no column {name!r} declared in info['scd2']")
    if {c.name for c in table.primary_key.columns} != {*key, valid_from}:
        raise Scd2Error(f"table {table.name}: the primary key must be {(*key, valid_from)}")
    others = tuple(c.name for c in table.columns if c.name not in (*key, valid_from, valid_to))
    tracked = tuple(declared.get("tracked") or others)
    unknown = [c for c in tracked if c not in others]
    if unknown:
        raise Scd2Error(f"table {table.name}: tracked columns {unknown} are not value columns")
    return Scd2Spec(key=key, tracked=tracked, valid_from=valid_from, valid_to=valid_to)


def applied_through(connection: sa.Connection, table: sa.Table, like: date | datetime) -> date | datetime | None:
    """The latest day applied to `table` (parsed as the type of `like`), None if never."""
    _metadata.create_all(connection, checkfirst=True)
    text = connection.execute(
        sa.select(watermark.c.applied_through).where(watermark.c.table_name == table.name)
    ).scalar_one_or_none()
    return None if text is None else type(like).fromisoformat(text)


def apply_snapshot(
    connection: sa.Connection, table: sa.Table, snapshot: pd.DataFrame, as_of: date | datetime
) -> Scd2Result:
    """Bring `table` to the complete `snapshot` (key + tracked columns, one row per key) of `as_of`."""
    spec = spec_of(table)
    values_columns = _check_snapshot(table, spec, snapshot)
    result = Scd2Result(table=table.name, as_of=as_of)
    latest = applied_through(connection, table, as_of)
    result.applied_through = latest
    if latest is not None and as_of < latest:
        result.late = True
        return result

    wanted = _rows_by_key(snapshot, spec.key)
    before, at = _current_rows(connection, table, spec, as_of)
    plan = _Plan()
    for key in wanted.keys() | before.keys() | at.keys():
        _plan_key(plan, spec, key, wanted.get(key), before.get(key), at.get(key), as_of, result)
    plan.execute(connection, table, spec, as_of, values_columns)

    _set_watermark(connection, table, as_of, exists=latest is not None)
    result.applied_through = max(as_of, latest) if latest is not None else as_of
    return result


def _check_snapshot(table: sa.Table, spec: Scd2Spec, snapshot: pd.DataFrame) -> list[str]:
    missing = [c for c in (*spec.key, *spec.tracked) if c not in snapshot.columns]
    if missing:
        raise Scd2Error(f"the snapshot for {table.name} lacks columns {missing}")
    unknown = [c for c in snapshot.columns if c not in table.c or c in (spec.valid_from, spec.valid_to)]
    if unknown:
        raise Scd2Error(f"the snapshot for {table.name} has columns {unknown} that are not value columns")
    duplicated = snapshot.duplicated(list(spec.key))
    if duplicated.any():
        keys = snapshot.loc[duplicated, list(spec.key)].head(5).to_dict("records")
        raise Scd2Error(f"the snapshot for {table.name} holds keys more than once, e.g. {keys}")
    return [c for c in snapshot.columns if c not in spec.key]


def _plain(frame: pd.DataFrame) -> list[dict[str, Any]]:
    # Python objects, None for every kind of missing value: what the driver returns, to compare.
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _rows_by_key(snapshot: pd.DataFrame, key: tuple[str, ...]) -> dict[Hashable, dict[str, Any]]:
    return {tuple(row[k] for k in key): row for row in _plain(snapshot)}


def _current_rows(connection, table, spec: Scd2Spec, as_of) -> tuple[dict, dict]:
    """Rows still valid on `as_of`: those opened before it (`before`) and on it (`at`), by key."""
    vt = table.c[spec.valid_to]
    rows = connection.execute(sa.select(table).where(sa.or_(vt.is_(None), vt >= as_of))).mappings().all()
    before: dict = {}
    at: dict = {}
    for row in rows:
        key = tuple(row[k] for k in spec.key)
        starts, ends = _as_type(row[spec.valid_from], as_of), _as_type(row[spec.valid_to], as_of)
        if starts > as_of or (ends is not None and ends > as_of):
            raise Scd2Error(
                f"{table.name}: key {key} has history after {as_of} although the table was applied only "
                "through that day; the table was written outside apply_snapshot"
            )
        target = at if starts == as_of else before
        if key in target:
            raise Scd2Error(f"{table.name}: key {key} has more than one row valid on {as_of}")
        target[key] = dict(row)
    return before, at


def _as_type(value, like):
    # SQLite hands dates back as dates but may hand timestamps back as text.
    if value is None or isinstance(value, type(like)):
        return value
    if isinstance(value, str):
        return type(like).fromisoformat(value)
    if isinstance(value, datetime) and not isinstance(like, datetime):
        return value.date()
    return value


def _same(spec: Scd2Spec, stored: dict, wanted: dict) -> bool:
    return all(stored[c] == wanted[c] for c in spec.tracked)


def _plan_key(plan, spec, key, wanted, before, at, as_of, result: Scd2Result) -> None:
    before_open = before is not None and before[spec.valid_to] is None
    if wanted is None:  # the key is not in the snapshot: removed on as_of
        if at is not None:
            plan.delete.append(at)
            result.deleted += 1
        elif before_open:
            plan.close.append(before)
            result.closed += 1
        return
    if at is not None:  # the day was applied before: make its row say what the snapshot says
        if _same(spec, at, wanted):
            result.unchanged += 1
        elif before is not None and _same(spec, before, wanted):
            plan.delete.append(at)
            plan.reopen.append(before)
            result.deleted += 1
            result.reopened += 1
        else:
            plan.rewrite.append((at, wanted))
            result.rewritten += 1
        return
    if before is not None and _same(spec, before, wanted):
        if before_open:
            result.unchanged += 1
        else:  # removed on as_of by an earlier application of this day, present after all
            plan.reopen.append(before)
            result.reopened += 1
        return
    if before_open:
        plan.close.append(before)
        result.closed += 1
    plan.open.append(wanted)
    result.opened += 1


class _Plan:
    def __init__(self) -> None:
        self.open: list[dict] = []
        self.close: list[dict] = []
        self.reopen: list[dict] = []
        self.delete: list[dict] = []
        self.rewrite: list[tuple[dict, dict]] = []

    def execute(self, connection, table, spec: Scd2Spec, as_of, values_columns: list[str]) -> None:
        where = sa.and_(
            *(table.c[k] == sa.bindparam(f"_key_{k}") for k in spec.key),
            table.c[spec.valid_from] == sa.bindparam("_valid_from"),
        )

        def ident(row: dict) -> dict:
            found = {f"_key_{k}": row[k] for k in spec.key}
            found["_valid_from"] = row[spec.valid_from]
            return found

        if self.delete:
            connection.execute(sa.delete(table).where(where), [ident(r) for r in self.delete])
        end = {spec.valid_to: sa.bindparam("_valid_to")}
        if self.close:
            connection.execute(
                sa.update(table).where(where).values(end), [ident(r) | {"_valid_to": as_of} for r in self.close]
            )
        if self.reopen:
            connection.execute(
                sa.update(table).where(where).values(end), [ident(r) | {"_valid_to": None} for r in self.reopen]
            )
        if self.rewrite:
            values = {c: sa.bindparam(f"_value_{c}") for c in values_columns}
            connection.execute(
                sa.update(table).where(where).values(values),
                [ident(at) | {f"_value_{c}": wanted[c] for c in values_columns} for at, wanted in self.rewrite],
            )
        if self.open:
            connection.execute(
                table.insert(),
                [{**row, spec.valid_from: as_of, spec.valid_to: None} for row in self.open],
            )


def _set_watermark(connection: sa.Connection, table: sa.Table, as_of, exists: bool) -> None:
    if exists:
        connection.execute(
            sa.update(watermark)
            .where(watermark.c.table_name == table.name, watermark.c.applied_through < as_of.isoformat())
            .values(applied_through=as_of.isoformat())
        )
    else:
        connection.execute(sa.insert(watermark).values(table_name=table.name, applied_through=as_of.isoformat()))
