"""Which way a merge writes its rows: decided here, in one place, with the figures it is decided on.

The paths (`etl_platform.lib.upsert` runs them):
- `portable`: every row staged (batched inserts) and upserted with `INSERT ... ON CONFLICT`; any database;
- `staged`: Postgres, every row staged by binary `COPY` and upserted;
- `direct`: Postgres, the rows whose key the table does not hold copied straight into it, the rest staged
  and upserted (the keys are looked up first);
- `rebuild`: Postgres, the table locked, its indexes dropped, the stored rows updated from a stage, the new
  ones copied in, the indexes built again (`etl_platform.lib.index_rebuild`).

A plan says what is intended; two things are settled only as the merge runs, and `MergeResult` says
what was taken and why: a rebuild needs the table's lock and indexes nothing else depends on (else
`direct`), and a direct copy that meets a key another writer committed meanwhile upserts every row
(`staged`). A test forces a path with `merge(..., plan="direct")`, or plans with other thresholds:
`merge(..., plan=plan_merge(connection, table, frame, rebuild_min_rows=0))`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple, get_args

import pandas as pd
import sqlalchemy as sa

from etl_platform.lib.index_rebuild import held_rows

MergePath = Literal["portable", "staged", "direct", "rebuild"]
PATHS: tuple[MergePath, ...] = get_args(MergePath)

# From this many rows on, new keys are copied in directly; the key lookup it takes does not pay
# for itself in smaller batches. Measured on CVE rows: 1.4x faster for 200k or 50k all-new rows,
# 1.04-1.09x for 200k half new, level for 50k half new, slower below 20k rows (benchmarks/README.md).
DIRECT_COPY_MIN_ROWS = 50_000
# Rebuilding the indexes pays when a batch writes about a third of the rows its table holds or
# more: maintaining `cve`'s three indexes costs ~6-9 us a row written, building them again ~2 us
# a row held (benchmarks/README.md). Half leaves a margin for tables whose indexes cost less to
# maintain. Below `REBUILD_MIN_ROWS` neither way takes long, and a small merge should not lock its
# table against readers: an ordinary day's few thousand changes never rebuild.
REBUILD_MIN_SHARE = 0.5
REBUILD_MIN_ROWS = 50_000
# A rebuild waits this long for its table's lock (a long reader holds it), then takes the direct path.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class MergePlan:
    """The path a merge is to take, why, and every figure it was decided on."""

    path: MergePath
    reason: str
    batch_rows: int | None  # None: forced before the rows were seen
    table_rows: float | None  # the planner's estimate, looked up only when a rebuild is within reach
    direct_copy_min_rows: int
    rebuild_min_rows: int
    rebuild_min_share: float
    lock_timeout: str
    forced: bool = False

    @classmethod
    def force(cls, path: MergePath, *, lock_timeout: str | None = None) -> MergePlan:
        """A plan that takes `path` whatever the figures: a test's way down one path."""
        if path not in PATHS:
            raise ValueError(f"no merge path {path!r}: one of {', '.join(PATHS)}")
        figures = _thresholds(lock_timeout=lock_timeout)
        return cls(path, "forced by the caller", None, None, **figures, forced=True)


class PathTaken(NamedTuple):
    """The path a merge (or its load of a child table) took, and why."""

    path: MergePath
    reason: str


def plan_merge(
    connection: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame,
    children: Iterable[sa.Table] = (),
    *,
    direct_copy_min_rows: int | None = None,
    rebuild_min_rows: int | None = None,
    rebuild_min_share: float | None = None,
    lock_timeout: str | None = None,
) -> MergePlan:
    """The path for merging `frame` (and `children`, the child tables loaded with it) into `table`.

    The thresholds are the module's unless given. Reads no rows: at most the catalog's estimate of
    the table's size, and only for a batch large enough to rebuild.
    """
    rows = len(frame)
    thresholds = _thresholds(direct_copy_min_rows, rebuild_min_rows, rebuild_min_share, lock_timeout)
    figures = MergePlan("portable", "", rows, None, **thresholds)
    if connection.dialect.name != "postgresql":
        reason = f"{connection.dialect.name}: every row staged and upserted (the other paths need Postgres)"
        return replace(figures, reason=reason)
    if rows < figures.direct_copy_min_rows:
        least = f"fewer than DIRECT_COPY_MIN_ROWS ({figures.direct_copy_min_rows:,})"
        return replace(figures, path="staged", reason=f"{_rows(rows)}, {least}: every row staged and upserted")
    missing = missing_links(frame, children)
    if missing:
        reason = f"the rows lack their children's link columns {missing}: every row staged and upserted"
        return replace(figures, path="staged", reason=reason)
    return _direct_or_rebuild(connection, table, figures, "new keys copied in, the rest staged and upserted")


def plan_child_load(connection: sa.Connection, child: sa.Table, rows: int, parent: MergePlan) -> MergePlan:
    """Postgres: how the `rows` children of the written parents go into `child`, their old rows deleted:
    copied in (`direct`), or with the child table's indexes built again (`rebuild`), by the parent's
    thresholds against the child table's own size. A forced parent forces its children alike."""
    figures = replace(parent, batch_rows=rows, table_rows=None)
    if parent.forced:
        return replace(figures, path="rebuild" if parent.path == "rebuild" else "direct")
    return _direct_or_rebuild(connection, child, figures, "copied in, the indexes kept")


def missing_links(frame: pd.DataFrame, children: Iterable[sa.Table]) -> list[str]:
    """The columns the children link on that the rows lack: new rows' links must come from the rows
    to copy them in directly (the upsert returns them from the table instead)."""
    links = {column for child in children for column in child.info.get("parent_key", ())}
    return sorted(links - set(frame.columns))


def _direct_or_rebuild(connection: sa.Connection, table: sa.Table, figures: MergePlan, copy: str) -> MergePlan:
    """`rebuild` if the batch is large against the table, by the thresholds of `figures`; else `direct`,
    whose way of writing `copy` describes."""
    rows, min_rows, min_share = figures.batch_rows or 0, figures.rebuild_min_rows, figures.rebuild_min_share
    if rows < min_rows:
        reason = f"{_rows(rows)}, fewer than REBUILD_MIN_ROWS ({min_rows:,}): {copy}"
        return replace(figures, path="direct", reason=reason)
    held = held_rows(connection, table)
    if rows < min_share * held:
        share = f"fewer than REBUILD_MIN_SHARE ({min_share:g}) of the ~{held:,.0f} the table holds"
        return replace(figures, path="direct", reason=f"{_rows(rows)}, {share}: {copy}", table_rows=held)
    share = f"at least REBUILD_MIN_ROWS ({min_rows:,}) and REBUILD_MIN_SHARE ({min_share:g}) of the ~{held:,.0f} held"
    reason = f"{_rows(rows)}, {share}: the table locked, its indexes dropped and built again"
    return replace(figures, path="rebuild", reason=reason, table_rows=held)


def _thresholds(
    direct_copy_min_rows: int | None = None,
    rebuild_min_rows: int | None = None,
    rebuild_min_share: float | None = None,
    lock_timeout: str | None = None,
) -> dict[str, Any]:
    """The thresholds given, the module's for the rest (read now: a test may have changed them)."""
    given = {
        "direct_copy_min_rows": (direct_copy_min_rows, DIRECT_COPY_MIN_ROWS),
        "rebuild_min_rows": (rebuild_min_rows, REBUILD_MIN_ROWS),
        "rebuild_min_share": (rebuild_min_share, REBUILD_MIN_SHARE),
        "lock_timeout": (lock_timeout, LOCK_TIMEOUT),
    }
    return {name: default if value is None else value for name, (value, default) in given.items()}


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"
