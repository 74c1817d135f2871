"""The data rules of the HR tables, shared by the CSV migration and the batch ingestion API.

Every field is required; ids are integers; datetimes are ISO-8601 (UTC when no offset is
given); ids referenced through a foreign key must exist. A row breaking a rule is rejected
with a reason naming the rule; the other rows of the batch are unaffected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import sqlalchemy as sa

from etl_platform.lib.writes import append


@dataclass(frozen=True)
class Rejection:
    index: int
    payload: Any
    reason: str

    def payload_json(self) -> str:
        return json.dumps(self.payload, default=str, ensure_ascii=False)


@dataclass
class Checked:
    """The rows that passed (typed, in table column order) and the rejections, by input position."""

    rows: pd.DataFrame
    rejections: list[Rejection] = field(default_factory=list)


class RuleError(ValueError):
    """One field breaks a rule; the message is the rejection reason."""


def references(table: sa.Table) -> dict[str, str]:
    """Columns of `table` that reference another table: column -> referenced table."""
    return {fk.parent.name: fk.column.table.name for fk in table.foreign_keys}


def check_rows(
    table: sa.Table,
    records: Sequence[Mapping[str, Any] | Sequence[Any]],
    known_ids: Mapping[str, set[int]] | None = None,
    taken_ids: set[int] | None = None,
) -> Checked:
    """Apply the rules of `table` to records given as mappings or as positional rows.

    `known_ids` holds the ids that exist per referenced table; `taken_ids`, when given, the
    ids of `table` that exist already (a row reusing one is rejected as a duplicate id).
    """
    known_ids = known_ids or {}
    links = references(table)
    table_columns = list(table.columns)  # iterating `table.columns` per row costs more than the rules
    columns = [c.name for c in table_columns]
    seen: set[int] = set()
    valid: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for index, record in enumerate(records):
        try:
            row = _typed_row(table_columns, _as_mapping(record, columns))
            for column, referenced in links.items():
                if row[column] not in known_ids.get(referenced, set()):
                    raise RuleError(f"{column} {row[column]} does not exist in {referenced}")
            if row["id"] in seen or (taken_ids is not None and row["id"] in taken_ids):
                raise RuleError(f"duplicate id {row['id']}")
        except RuleError as error:
            rejections.append(Rejection(index, record, str(error)))
            continue
        seen.add(row["id"])
        valid.append(row)
    return Checked(_frame(table, valid), rejections)


def _as_mapping(record: Mapping[str, Any] | Sequence[Any], columns: list[str]) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        unknown = sorted(set(record) - set(columns))
        if unknown:
            raise RuleError(f"unknown field(s): {', '.join(unknown)}")
        return record
    if isinstance(record, (str, bytes)) or len(record) != len(columns):
        raise RuleError(f"expected {len(columns)} fields ({', '.join(columns)}), got {len(record)}")
    return dict(zip(columns, record))


def _typed_row(columns: Sequence[sa.Column], record: Mapping[str, Any]) -> dict[str, Any]:
    row = {}
    for column in columns:
        value = record.get(column.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise RuleError(f"{column.name} is required")
        row[column.name] = _typed_value(column, value)
    return row


def _typed_value(column: sa.Column, value: Any) -> Any:
    if isinstance(column.type, sa.Integer):
        digits = isinstance(value, str) and value.strip().lstrip("-").isdigit()
        if isinstance(value, bool) or not (isinstance(value, int) or digits):
            raise RuleError(f"{column.name} must be an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:  # digits that int() does not read, e.g. "²"
            raise RuleError(f"{column.name} must be an integer, got {value!r}") from None
        limit = 2**63 if isinstance(column.type, sa.BigInteger) else 2**31  # the column's SQL type
        if not -limit <= number < limit:
            raise RuleError(f"{column.name} {number} is out of range")
        return number
    if isinstance(column.type, sa.DateTime):
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        except (ValueError, OverflowError):
            raise RuleError(f"{column.name} must be an ISO-8601 datetime, got {value!r}") from None
        if not 1678 <= moment.year <= 2261:  # what a (nanosecond) pandas timestamp holds
            raise RuleError(f"{column.name} {value!r} is out of range (years 1678 to 2261)")
        return moment
    if not isinstance(value, str):
        raise RuleError(f"{column.name} must be text, got {type(value).__name__}")
    if "\x00" in value:  # Postgres text cannot hold it
        raise RuleError(f"{column.name} must not contain a NUL character")
    return value.strip()


def _frame(table: sa.Table, rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=[c.name for c in table.columns])
    for column in table.columns:
        if isinstance(column.type, sa.Integer):
            frame[column.name] = frame[column.name].astype("int64")
        elif isinstance(column.type, sa.DateTime):
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True, cache=False)
    return frame


def log_rejections(connection: sa.Connection, table: str, rejections: Sequence[Rejection], source: str) -> int:
    """Append rejections to `ingest_rejections` inside the caller's transaction; how many."""
    from etl_platform.defs.hr.tables import ingest_rejections

    rows = (
        {"table_name": table, "payload": r.payload_json(), "reason": r.reason, "source": source} for r in rejections
    )
    return append(connection, ingest_rejections, rows).inserted
