"""Quarantine: one bad record is set aside, the rest of its day loads.

Every domain passes its typed records through the same gate (`gate`):

- a record that breaks a row-level rule (a Pandera row check, a value its column cannot
  hold, a record the parser could not read) is *rejected*: it goes to the warehouse table
  `quarantine` as the source sent it, with its reasons, and is left out of the load;
- a *structural* failure (a required column missing, a column of the wrong type as a
  whole) or more than `max_bad_share` of the records rejected blocks the whole batch:
  nothing is loaded and nothing is quarantined, the check fails with severity ERROR.

A record stays quarantined (`replayed_at` null) until a later run of the same partition
loads it: then it is marked replayed (`mark_replayed`, in the load's transaction).
Re-running a partition whose record is still bad updates the open row (new reasons, run and
time) instead of adding another, so `source total == loaded + open quarantined` holds per
partition.

A source read in overlapping windows instead of partitions (sales) fetches a record again
under a new window: with `across_partitions`, `keep` moves its open row to the new window and
`mark_replayed` closes it whichever window it was set aside in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, ConfigurableResource, MetadataValue
from pydantic import Field

from etl_platform.lib.warehouse import declare
from etl_platform.lib.writes import append

DEFAULT_MAX_BAD_SHARE = 0.05
SHOWN_REASONS = 10
# Reasons Pandera reports without a row: the frame as a whole is wrong, not one record.
STRUCTURAL_CHECKS = ("column_in_dataframe", "column_in_schema", "dtype", "multiple_fields_check")

metadata = declare(sa.MetaData())  # created by the warehouse resource on first use
UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("domain", sa.Text, nullable=False, comment="the asset group: cve, commerce, sales, hr"),
    sa.Column("asset", sa.Text, nullable=False, comment="the asset whose rules the record broke (key path)"),
    sa.Column("partition", sa.Text, comment="the partition (day) or the run's window it came in"),
    sa.Column("record_key", sa.Text, nullable=False, comment="its id at the source, or #<position> without one"),
    sa.Column("payload", JSON, nullable=False, comment="the record as the source sent it"),
    sa.Column("reasons", JSON, nullable=False, comment="what it broke: a list of texts"),
    sa.Column("run_id", sa.Text, comment="the Dagster run that set it aside last"),
    sa.Column("quarantined_at", UTC_TIMESTAMP, nullable=False),
    sa.Column("replayed_at", UTC_TIMESTAMP, comment="when a later run loaded it; null while it is quarantined"),
    sa.Index("ix_quarantine_open", "domain", "partition", "replayed_at"),
    comment="Records set aside by a row-level rule while the rest of their day loaded; replayed when fixed.",
)


class QuarantineResource(ConfigurableResource):
    """How many bad records a batch may set aside before it is refused as a whole."""

    max_bad_share: float = Field(
        default=DEFAULT_MAX_BAD_SHARE,
        ge=0,
        le=1,
        description="above this share of rejected records nothing of the batch loads (default 5%)",
    )


@dataclass
class Rejected:
    """One record set aside: its key at the source, what it was, why."""

    record_key: str
    payload: Any
    reasons: list[str]


@dataclass
class Verdict:
    """What the gate decided for one batch of records."""

    total: int
    rejected: list[Rejected] = field(default_factory=list)
    structural: list[str] = field(default_factory=list)
    max_bad_share: float = DEFAULT_MAX_BAD_SHARE

    @property
    def share(self) -> float:
        return len(self.rejected) / self.total if self.total else 0.0

    @property
    def blocked(self) -> bool:
        return bool(self.structural) or self.share > self.max_bad_share

    @property
    def rejected_keys(self) -> set[str]:
        return {record.record_key for record in self.rejected}

    def reason(self) -> str:
        """Why the batch is blocked (empty when it is not)."""
        if self.structural:
            return "structural: " + "; ".join(self.structural[:SHOWN_REASONS])
        if self.blocked:
            return (
                f"{len(self.rejected)} of {self.total} records ({self.share:.1%}) break row rules, "
                f"above the {self.max_bad_share:.1%} allowed: nothing is loaded"
            )
        return ""

    def metadata(self) -> dict[str, Any]:
        sample = [f"{r.record_key}: {'; '.join(r.reasons)}" for r in self.rejected[:SHOWN_REASONS]]
        return {
            "records": self.total,
            "quarantined": 0 if self.blocked else len(self.rejected),
            "rejected": len(self.rejected),
            "rejected_share": round(self.share, 4),
            "max_bad_share": self.max_bad_share,
            "structural_failures": len(self.structural),
            "reasons_sample": MetadataValue.md("\n".join(f"- {line}" for line in sample) or "none"),
        }


def row_failures(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> tuple[list[str], dict[Any, list[str]]]:
    """Pandera's verdict on a frame: structural failures, and the reasons of each failing row (by index)."""
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        structural: list[str] = []
        rows: dict[Any, list[str]] = defaultdict(list)
        for case in errors.failure_cases.itertuples(index=False):
            what = f"{case.column}: {case.check} (got {case.failure_case!r})"
            if case.index is None or pd.isna(case.index) or case.check in STRUCTURAL_CHECKS:
                structural.append(f"{model.__name__} {what}")
            else:
                rows[case.index].append(what)
        return structural, dict(rows)
    return [], {}


class Gate:
    """Collects, record by record, why records of one batch are bad; then says what loads.

    A record is its position in the batch as the source sent it; rows of several tables
    (a CVE and its children) map to it through a `records` array aligned with each frame.
    """

    def __init__(self, total: int, max_bad_share: float = DEFAULT_MAX_BAD_SHARE):
        self.total = total
        self.max_bad_share = max_bad_share
        self.reasons: dict[int, list[str]] = defaultdict(list)
        self.structural: list[str] = []
        self.by_table: dict[str, dict[str, Any]] = {}

    def reject(self, record: int, reasons: Iterable[str]) -> None:
        self.reasons[int(record)].extend(reasons)

    def check(self, name: str, model: type[pa.DataFrameModel], frame: pd.DataFrame, records: Sequence[int]) -> None:
        """Validate one table's frame (index 0..n-1); failing rows reject the records they come from."""
        structural, rows = row_failures(model, frame)
        self.structural.extend(structural)
        for index, reasons in rows.items():
            self.reject(records[int(index)], (f"{name}.{reason}" for reason in reasons))
        self.by_table[name] = {"rows": len(frame), "failing_rows": len(rows), "structural": len(structural)}

    def verdict(self, describe: Callable[[int], tuple[str, Any]]) -> Verdict:
        """The decision; `describe(record)` gives a rejected record's key and payload."""
        rejected = [Rejected(*describe(record), reasons) for record, reasons in sorted(self.reasons.items())]
        return Verdict(self.total, rejected, list(self.structural), self.max_bad_share)

    def good(self, frame: pd.DataFrame, records: Sequence[int]) -> pd.DataFrame:
        """The frame without the rows of rejected records (the frame itself when none is)."""
        if not self.reasons:
            return frame
        bad = np.isin(np.asarray(records, dtype=np.int64), np.fromiter(self.reasons, dtype=np.int64))
        return frame[~bad].reset_index(drop=True) if bad.any() else frame


def json_payload(value: Any) -> Any:
    """A payload the JSON column takes: what orjson can write (Decimals and timestamps as text)."""
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def keep(
    connection: sa.Connection,
    *,
    domain: str,
    asset: AssetKey,
    partition: str | None,
    rejected: Sequence[Rejected],
    run_id: str | None,
    across_partitions: bool = False,
) -> dict[str, int]:
    """Keep a batch's rejected records; one still open from an earlier run is updated, not added again.

    With `across_partitions`, an open record of another partition with the same id at the source is
    that record too: it is moved to this partition (the window that fetched it last). A `#<position>`
    key names a record only within its partition.
    """
    now = datetime.now(timezone.utc)
    q = quarantine.c
    rows = connection.execute(
        sa.select(q.record_key, q.id, q.partition).where(_open(domain, asset, partition, across_partitions))
    )
    open_rows = {
        row.record_key: row.id for row in rows if row.partition == partition or not row.record_key.startswith("#")
    }
    again, new = 0, []
    for row in rejected:
        # The partition is set again too: a record matched in another partition moves to this one.
        values = {"payload": json_payload(row.payload), "reasons": row.reasons, "run_id": run_id, "quarantined_at": now}
        values["partition"] = partition
        if row.record_key in open_rows:
            connection.execute(quarantine.update().where(q.id == open_rows[row.record_key]).values(**values))
            again += 1
        else:
            new.append({"domain": domain, "asset": "/".join(asset.path), "record_key": row.record_key, **values})
    return {"quarantined_new": append(connection, quarantine, new).inserted, "quarantined_again": again}


def set_aside(
    warehouse: Any,
    verdict: Verdict,
    *,
    domain: str,
    asset: AssetKey,
    partition: str | None,
    run_id: str | None,
    log: Any,
    across_partitions: bool = False,
) -> dict[str, int]:
    """Keep a batch's rejected records in its own transaction; none of a blocked batch (nothing of it loads)."""
    if verdict.blocked or not verdict.rejected:
        return {}
    with warehouse.begin() as connection:
        counts = keep(
            connection,
            domain=domain,
            asset=asset,
            partition=partition,
            rejected=verdict.rejected,
            run_id=run_id,
            across_partitions=across_partitions,
        )
    log.warning(f"{domain} {partition}: quarantined {sorted(verdict.rejected_keys)[:20]}: {counts}")
    return counts


def mark_replayed(
    connection: sa.Connection,
    *,
    domain: str,
    asset: AssetKey,
    partition: str | None,
    loaded_keys: Iterable[Any],
    across_partitions: bool = False,
) -> int:
    """Close the open records of a partition (of any, `across_partitions`) a run has now loaded; how many."""
    if not sa.inspect(connection).has_table(quarantine.name):
        return 0
    q = quarantine.c
    where = _open(domain, asset, partition, across_partitions)
    open_rows = dict(connection.execute(sa.select(q.record_key, q.id).where(where)).all())
    if not open_rows:
        return 0
    ids = [open_rows[key] for key in {str(k) for k in loaded_keys} if key in open_rows]
    if ids:
        connection.execute(quarantine.update().where(q.id.in_(ids)).values(replayed_at=datetime.now(timezone.utc)))
    return len(ids)


def _open(
    domain: str, asset: AssetKey | None, partition: str | None, across_partitions: bool = False
) -> sa.ColumnElement[bool]:
    q = quarantine.c
    where = (q.domain == domain) & q.replayed_at.is_(None)
    if not across_partitions:
        where &= q.partition.is_(None) if partition is None else (q.partition == partition)
    if asset is not None:
        where &= q.asset == "/".join(asset.path)
    return where


def open_count(connection: sa.Connection, domain: str, partition: str | None, asset: AssetKey | None = None) -> int:
    """Records of a partition still quarantined (0 when the table does not exist yet)."""
    if not sa.inspect(connection).has_table(quarantine.name):
        return 0
    return connection.execute(sa.select(sa.func.count()).where(_open(domain, asset, partition))).scalar_one()


def open_partitions(connection: sa.Connection, domain: str) -> list[str | None]:
    """Partitions of a domain that hold quarantined records, oldest first."""
    if not sa.inspect(connection).has_table(quarantine.name):
        return []
    q = quarantine.c
    rows = connection.execute(
        sa.select(q.partition).where(q.domain == domain, q.replayed_at.is_(None)).distinct().order_by(q.partition)
    )
    return [row.partition for row in rows]


def gate_check(asset_key: AssetKey, check_name: str, verdict: Verdict, **extra: Any) -> AssetCheckResult:
    """The check a gated asset reports: passed, WARN with what was quarantined, or ERROR when blocked."""
    metadata = {**verdict.metadata(), **extra}
    if verdict.blocked:
        return AssetCheckResult(
            asset_key=asset_key,
            check_name=check_name,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=verdict.reason(),
        )
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=not verdict.rejected,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            f"{len(verdict.rejected)} record(s) quarantined, the other {verdict.total - len(verdict.rejected)} loaded"
            if verdict.rejected
            else None
        ),
    )
