"""One generic, idempotent upsert ("merge") for every table of every domain.

What a table needs is declared once, on its SQLAlchemy `Table`:
- the merge key is its primary key;
- `info={"version_column": "last_modified"}` makes newer versions win: a staged row never
  overwrites a stored row with a higher version, whatever order partitions load in;
- a child table declares `info={"parent": "<parent table>", "parent_key": ("col", ...)}`, the
  columns it shares with its parent; when a parent row is inserted or really changes, its
  children are replaced (deleted, then inserted from the new version).

Rows are put in key order, one per key. Which way they are written is the merge's plan
(`etl_platform.lib.merge_plan`, where every threshold is), and the result says which way was
taken (`MergeResult.path`). On Postgres the rows are staged into a temporary table (binary
`COPY`, `etl_platform.lib.bulk_load`) and merged with `INSERT ... SELECT ... ON CONFLICT DO
UPDATE`, which updates only rows whose content differs, so re-running a load writes nothing;
the same statement returns what it inserted and updated (no second pass over the stage). A
large batch first copies the rows whose key the table does not hold straight into it
(`direct`). A batch that writes much of its table (a first load, a backfill) instead locks the
table, drops its indexes, updates the stored rows with `UPDATE ... FROM` the stage, copies the
new ones in and builds the indexes again (`rebuild`, `etl_platform.lib.index_rebuild`);
children likewise. SQLite stages every row (batched inserts) and runs the same upsert
(`portable`). The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from etl_platform.lib import index_rebuild
from etl_platform.lib.bulk_load import load_rows
from etl_platform.lib.merge_plan import (
    PATHS,
    MergePath,
    MergePlan,
    PathTaken,
    missing_links,
    plan_child_load,
    plan_merge,
)
from etl_platform.lib.schema_evolution import evolve
from etl_platform.lib.warehouse import quoted_table


class MergeError(ValueError):
    """The rows cannot be merged into the table as declared (unknown columns, missing keys...)."""


@dataclass
class MergeResult:
    """What a merge did, for materialization metadata."""

    table: str
    staged: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_dropped: int = 0
    children: dict[str, int] = field(default_factory=dict)
    added_columns: list[str] = field(default_factory=list)
    widened_columns: list[str] = field(default_factory=list)
    plan: MergePlan | None = None  # the path intended, and the figures it was decided on
    path: MergePath = "portable"  # the path taken
    reason: str = ""  # why: the plan's reason, or why its path was not taken
    child_paths: dict[str, PathTaken] = field(default_factory=dict)  # of the child tables written

    def path_metadata(self, child: str | None = None) -> dict[str, str]:
        """`merge_path` and `merge_reason` of the table, or of the child table `child` ({} if none of
        its rows was replaced), for an asset's materialization metadata."""
        taken = PathTaken(self.path, self.reason) if child is None else self.child_paths.get(child)
        return {"merge_path": taken.path, "merge_reason": taken.reason} if taken else {}

    def as_metadata(self) -> dict[str, int | str]:
        rows: dict[str, int | str] = {
            f"{self.table}/staged": self.staged,
            f"{self.table}/inserted": self.inserted,
            f"{self.table}/updated": self.updated,
            f"{self.table}/unchanged_or_older": self.unchanged,
        }
        rows.update({f"{name}/rows_replaced": count for name, count in self.children.items()})
        if self.added_columns:
            rows[f"{self.table}/added_columns"] = ", ".join(self.added_columns)
        if self.widened_columns:
            rows[f"{self.table}/widened_columns"] = ", ".join(self.widened_columns)
        return rows


def merge_totals(table: str, results: Iterable[MergeResult]) -> MergeResult:
    """The counts of several merges into `table` added up (a load in batches), as one result."""
    total = MergeResult(table=table)
    for result in results:
        for name in ("staged", "inserted", "updated", "unchanged", "duplicates_dropped"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
        for child, rows in result.children.items():
            total.children[child] = total.children.get(child, 0) + rows
    return total


def merge(
    connection: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame,
    children: Mapping[sa.Table, pd.DataFrame] | None = None,
    *,
    evolve_schema: bool = False,
    plan: MergePlan | MergePath | None = None,
) -> MergeResult:
    """Upsert `frame` into `table` and replace the children of every parent that changed.

    `evolve_schema=True`: first create the table or add the frame's new columns, refusing an
    incompatible type change before anything is loaded (`etl_platform.lib.schema_evolution`).
    `plan`: the path to take; by default `plan_merge`'s. A path named ("direct") is forced (a test's
    way down each path); a plan of `plan_merge(..., rebuild_min_rows=0)` decides on other thresholds.
    """
    evolution = evolve(connection, table, frame) if evolve_schema else None
    if evolution is not None:
        table, frame = evolution.table, evolution.frame
    children = children or {}
    _columns_of(table, frame)  # refuses unknown columns and missing keys before anything is written
    key = [c.name for c in table.primary_key.columns]
    if not key:
        raise MergeError(f"table {table.name} has no primary key to merge on")
    links = {child: _parent_key(child, table) for child in children}
    returned = sorted({column for key_columns in links.values() for column in key_columns})
    plan = _plan(connection, table, frame, children, plan)
    taken = PathTaken(plan.path, plan.reason)
    missing = missing_links(frame, children)
    if taken.path in ("direct", "rebuild") and missing:  # a forced plan: new keys' links unknown
        taken = _not_taken(plan, "staged", f"the rows lack their children's link columns {missing}")
    indexes, taken = _lock_if_rebuilding(connection, table, plan, taken)
    lookup = taken.path in ("direct", "rebuild")
    with ThreadPoolExecutor(max_workers=1) as worker:
        # The server looks up which keys it holds while this thread puts the rows in order.
        stored = worker.submit(_stored_positions, connection, table, frame, key) if lookup else None
        order, dropped = _merge_order(frame, key, table.info.get("version_column"))
        is_new = ~np.isin(order, stored.result()) if stored else np.zeros(len(order), dtype=bool)
    result = MergeResult(table=table.name, staged=len(order), duplicates_dropped=dropped, plan=plan)
    if evolution is not None:
        result.added_columns, result.widened_columns = evolution.added, evolution.widened

    affected = (
        _temp_table(connection, f"_affected_{table.name}", [table.c[c] for c in returned]) if returned else None
    )
    batch = _Batch(frame, order, is_new, key)
    if indexes is not None:
        result.inserted, changed = _merge_rebuilding(connection, table, batch, affected, returned, indexes)
    elif taken.path == "portable":
        result.inserted, changed = _merge_portable(connection, table, batch, affected, returned)
    else:
        result.inserted, changed, copied = _merge_postgres(connection, table, batch, affected, returned)
        if not copied:
            taken = _not_taken(plan, "staged", "another writer committed one of the new keys meanwhile")
    result.path, result.reason = taken
    if affected is not None:
        # The portable path stages the children; the others copy those of written parents straight in.
        written = _written_parents(connection, affected) if taken.path != "portable" else None
        for child, child_frame in children.items():
            # With no parent inserted or changed there is nothing to replace (a re-run).
            if changed:
                result.children[child.name], result.child_paths[child.name] = _replace_children(
                    connection, child, child_frame, affected, links[child], written, plan
                )
            else:
                result.children[child.name] = 0
        affected.drop(connection)

    result.updated = changed - result.inserted
    result.unchanged = result.staged - changed
    return result


def _plan(
    connection: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame,
    children: Mapping[sa.Table, pd.DataFrame],
    plan: MergePlan | MergePath | None,
) -> MergePlan:
    """The plan to merge by: the one given (a path named is forced), else `plan_merge`'s."""
    if plan is None:
        return plan_merge(connection, table, frame, children)
    if isinstance(plan, str):
        if plan not in PATHS:
            raise MergeError(f"no merge path {plan!r}: one of {', '.join(PATHS)}")
        plan = MergePlan.force(plan)
    postgres = connection.dialect.name == "postgresql"
    if plan.path != "portable" and not postgres:
        raise MergeError(f"the {plan.path} path needs Postgres, not {connection.dialect.name}")
    if plan.path == "portable" and postgres:
        # It counts the stored keys before it upserts: exact only where no other writer commits between.
        raise MergeError("the portable path is for databases other than Postgres")
    return replace(plan, batch_rows=len(frame)) if plan.batch_rows is None else plan


def _not_taken(plan: MergePlan, path: MergePath, why: str) -> PathTaken:
    return PathTaken(path, f"{plan.path} planned ({plan.reason}), not taken: {why}")


def _lock_if_rebuilding(
    connection: sa.Connection, table: sa.Table, plan: MergePlan, taken: PathTaken | None = None
) -> tuple[index_rebuild.TableIndexes | None, PathTaken]:
    """The table's indexes, the table locked, if the path (`taken` so far, else the plan's) is
    `rebuild` and the lock is granted; else None, and the path to take instead."""
    taken = taken or PathTaken(plan.path, plan.reason)
    if taken.path != "rebuild":
        return None, taken
    try:
        return index_rebuild.lock_for_bulk_load(connection, table, plan.lock_timeout), taken
    except index_rebuild.RebuildRefused as refusal:
        return None, _not_taken(plan, "direct", str(refusal))


@dataclass(frozen=True)
class _Batch:
    """A merge's rows as decided: positions in key order (one per key), which of them are new
    (copied in directly), and the merge key."""

    frame: pd.DataFrame
    order: np.ndarray
    is_new: np.ndarray
    key: list[str]

    def new_rows(self) -> pd.DataFrame:
        return _take(self.frame, self.order[self.is_new])

    def staged_rows(self) -> pd.DataFrame:
        """The rows that are not new: staged, then merged into the stored ones."""
        return _take(self.frame, self.order[~self.is_new])

    def none_new(self) -> _Batch:
        return replace(self, is_new=np.zeros(len(self.order), dtype=bool))


def _merge_postgres(
    connection: sa.Connection, table: sa.Table, batch: _Batch, affected: sa.Table | None, returned: list[str]
) -> tuple[int, int, bool]:
    """Copy in the rows marked new, upsert the others; return (inserted, inserted or updated, whether
    the new rows were copied in)."""
    appended = batch.new_rows()
    copied = _append(connection, table, appended)
    if not copied:
        # Another writer committed one of the new keys meanwhile: upsert every row.
        appended, batch = appended.iloc[:0], batch.none_new()
    if affected is not None:
        load_rows(connection, affected, appended[returned])
    stage = _stage(connection, table, batch.staged_rows())
    statement = _upsert_statement(connection, table, stage, list(batch.frame.columns), batch.key)
    # A row an `ON CONFLICT` inserted has `xmax = 0`; one it updated carries the row lock's xid.
    inserted = sa.literal_column(f"{quoted_table(connection, table)}.xmax = 0")
    inserted, written = _run_counting(connection, statement, inserted, affected, returned)
    stage.drop(connection)
    return len(appended) + inserted, len(appended) + written, copied


def _merge_rebuilding(
    connection: sa.Connection,
    table: sa.Table,
    batch: _Batch,
    affected: sa.Table | None,
    returned: list[str],
    indexes: index_rebuild.TableIndexes,
) -> tuple[int, int]:
    """The table locked, its indexes dropped: update the stored rows from a stage, copy the new
    ones in, build the indexes; return (inserted, inserted or updated).

    Nobody else can write while the lock is held, so the keys looked up as new are new: no
    unique index is needed to catch a key committed meanwhile. The update runs first, while
    the table holds fewer rows for its join to read.
    """
    updated = 0
    with index_rebuild.indexes_dropped(connection, indexes):
        stored = batch.staged_rows()
        if not stored.empty:
            stage = _stage(connection, table, stored)
            statement = _update_statement(table, stage, list(batch.frame.columns), batch.key)
            if statement is not None:
                with index_rebuild.transaction_setting(connection, "work_mem", index_rebuild.UPDATE_WORK_MEM):
                    _, updated = _run_counting(connection, statement, sa.false(), affected, returned)
            stage.drop(connection)
        appended = batch.new_rows()
        load_rows(connection, table, appended)
        if affected is not None:
            load_rows(connection, affected, appended[returned])
    return len(appended), len(appended) + updated


def _merge_portable(
    connection: sa.Connection, table: sa.Table, batch: _Batch, affected: sa.Table | None, returned: list[str]
) -> tuple[int, int]:
    """Stage every row and upsert; return (inserted, inserted or updated)."""
    rows, key = batch.staged_rows(), batch.key
    stage = _stage(connection, table, rows)
    statement = _upsert_statement(connection, table, stage, list(rows.columns), key)
    existing = connection.execute(
        sa.select(sa.func.count()).select_from(stage.join(table, _key_match(stage, table, key)))
    ).scalar_one()
    changed = _upsert_collecting(connection, statement, affected, returned)
    stage.drop(connection)
    return len(rows) - existing, changed


def _columns_of(table: sa.Table, frame: pd.DataFrame) -> list[str]:
    unknown = [c for c in frame.columns if c not in table.c]
    if unknown:
        raise MergeError(f"columns {unknown} are not in table {table.name}")
    missing = [c.name for c in table.primary_key.columns if c.name not in frame.columns]
    if missing:
        raise MergeError(f"key columns {missing} of table {table.name} are missing from the rows")
    return [c.name for c in table.columns if c.name in frame.columns]


def _merge_order(frame: pd.DataFrame, key: list[str], version: str | None) -> tuple[np.ndarray, int]:
    """Positions of the rows to merge, in key order: one per key, the newest where a version
    is declared, else the last; and how many repeated rows were left out.

    A key may come twice in one batch (a source repeating a record). Key order makes the
    upsert walk the primary-key index from one end to the other instead of at random: 1.1x to
    1.3x faster for 200k rows, sort included (benchmarks/README.md).
    """
    keys = frame[key].reset_index(drop=True)
    order = keys.sort_values(key, kind="stable").index.to_numpy()
    if not keys.duplicated().any():
        return order, 0
    ranked = frame[[*key, version]].reset_index(drop=True).sort_values(version, kind="stable") if version else keys
    kept = np.zeros(len(frame), dtype=bool)
    kept[ranked.drop_duplicates(key, keep="last").index.to_numpy()] = True
    return order[kept[order]], int(len(frame) - kept.sum())


def _take(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The rows at `positions`; the frame itself when that is all of it, in order (a batch
    often arrives sorted already: no copy of a day's rows)."""
    if len(positions) == len(frame) and (positions == np.arange(len(frame))).all():
        return frame
    return frame.take(positions)


def _key_match(left: sa.Table, right: sa.Table, key: Sequence[str]) -> sa.ColumnElement[bool]:
    return sa.and_(*(left.c[k] == right.c[k] for k in key))


def _temp_table(connection: sa.Connection, name: str, columns: Sequence[sa.Column]) -> sa.Table:
    temp = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in columns),
        prefixes=["TEMPORARY"],
    )
    temp.create(connection)
    return temp


def _stage(connection: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> sa.Table:
    # The frame's columns are the table's (`_columns_of`), in any order: COPY names them.
    stage = _temp_table(connection, f"_stage_{table.name}", [table.c[c] for c in rows.columns])
    load_rows(connection, stage, rows)
    return stage


def _append(connection: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> bool:
    """Postgres: `COPY` rows whose keys the table did not hold straight into it.

    A plain `COPY` writes new rows in batches, through a small ring of buffers and without
    `ON CONFLICT`'s speculative insertion, ~2 us a row less (benchmarks/README.md: a 200k-row
    CVE batch merges 1.46x faster all new, 1.05x half new). Should another writer commit one
    of these keys meanwhile, the copy fails on the unique key inside a savepoint and False is
    returned: the caller then upserts every row, which compares versions as usual. (Rows
    copied in the savepoint carry its subtransaction's id as `xmin`, not the transaction's.)
    """
    from psycopg.errors import UniqueViolation

    if rows.empty:
        return True
    try:
        with connection.begin_nested():
            load_rows(connection, table, rows)
    except sa.exc.IntegrityError as error:
        if isinstance(error.orig, UniqueViolation):
            return False
        raise
    return True


def _stored_positions(connection: sa.Connection, table: sa.Table, frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    """Positions in `frame` of the rows whose key the table holds (in this statement's snapshot)."""
    if not connection.execute(sa.select(sa.exists().select_from(table))).scalar_one():
        return np.empty(0, dtype=np.int64)  # a first load: no keys to send
    keys = _temp_table(
        connection, f"_keys_{table.name}", [*(table.c[k] for k in key), sa.Column("_position", sa.BigInteger)]
    )
    load_rows(connection, keys, frame[key].assign(_position=np.arange(len(frame), dtype=np.int64)))
    positions = connection.execute(
        sa.select(sa.func.array_agg(keys.c._position)).select_from(keys.join(table, _key_match(keys, table, key)))
    ).scalar_one()
    keys.drop(connection)
    return np.asarray(positions or [], dtype=np.int64)


def _upsert_statement(
    connection: sa.Connection, table: sa.Table, stage: sa.Table, columns: list[str], key: list[str]
):
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint.
    source = sa.select(*(stage.c[c] for c in columns)).where(sa.true())
    statement = insert(table).from_select(columns, source)
    values = [c for c in columns if c not in key]
    if not values:
        return statement.on_conflict_do_nothing(index_elements=key)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=key, set_={c: excluded[c] for c in values}, where=_newer_and_different(table, excluded, values)
    )


def _update_statement(table: sa.Table, stage: sa.Table, columns: list[str], key: list[str]) -> sa.Update | None:
    """`UPDATE ... FROM stage` of the stored rows it changes (None: no column but the key)."""
    values = [c for c in columns if c not in key]
    if not values:
        return None
    return (
        sa.update(table)
        .values({c: stage.c[c] for c in values})
        .where(_key_match(stage, table, key), _newer_and_different(table, stage.c, values))
    )


def _newer_and_different(table: sa.Table, incoming, values: list[str]) -> sa.ColumnElement[bool]:
    """The stored row is to be replaced: the incoming one is not older, and differs."""
    changed = sa.tuple_(*(table.c[c] for c in values)).is_distinct_from(sa.tuple_(*(incoming[c] for c in values)))
    version = table.info.get("version_column")
    return sa.and_(table.c[version] <= incoming[version], changed) if version else changed


def _run_counting(
    connection: sa.Connection,
    statement,
    counted: sa.ColumnElement[bool],
    affected: sa.Table | None,
    returned: list[str],
) -> tuple[int, int]:
    """Postgres: run a writing statement; return (rows written for which `counted` holds, rows
    written), and keep the link columns of every row written in `affected`, all in one
    statement (no second pass over the stage).
    """
    written = statement.returning(*(statement.table.c[c] for c in returned), counted.label("_counted")).cte("written")
    counts = sa.select(sa.func.count().filter(written.c._counted), sa.func.count()).select_from(written)
    if affected is not None:
        keep = sa.insert(affected).from_select(returned, sa.select(*(written.c[c] for c in returned)))
        counts = counts.add_cte(keep.cte("kept"))
    counted_rows, written_rows = connection.execute(counts).one()
    return counted_rows, written_rows


def _upsert_collecting(
    connection: sa.Connection, statement, affected: sa.Table | None, returned: list[str]
) -> int:
    """Portable path: run the upsert, keep the link columns of every row written, count them."""
    if affected is None:
        return _rowcount(connection, statement)
    statement = statement.returning(*(statement.table.c[c] for c in returned))
    rows = [dict(zip(returned, row)) for row in connection.execute(statement)]
    if rows:
        connection.execute(affected.insert(), rows)
    return len(rows)


def _rowcount(connection: sa.Connection, statement) -> int:
    # SQLAlchemy reports rowcount of INSERT ... SELECT only when asked to keep it.
    return connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount


def _parent_key(child: sa.Table, parent: sa.Table) -> list[str]:
    """The columns a child shares with its parent, as the child declares them."""
    if child.info.get("parent") != parent.name:
        raise MergeError(f"table {child.name} does not declare {parent.name} as its parent")
    return list(child.info["parent_key"])


def _replace_children(
    connection: sa.Connection,
    child: sa.Table,
    frame: pd.DataFrame,
    affected: sa.Table,
    parent_key: list[str],
    written: pd.DataFrame | None,
    plan: MergePlan,
) -> tuple[int, PathTaken]:
    """Delete the children of every parent in `affected`, insert theirs from `frame`; return how many,
    and the path taken.

    With `written` (those parents' link values, read back on Postgres) the new children are
    chosen here and copied straight into the child table, whose indexes are built again if
    `plan_child_load` says so; otherwise they are staged and chosen by the database.
    """
    columns = _columns_of_child(child, frame)
    child_cols = sa.tuple_(*(child.c[c] for c in parent_key))
    parents = sa.select(*(affected.c[c] for c in parent_key))
    if written is not None:
        rows = _children_of(frame, written, parent_key)
        child_plan = plan_child_load(connection, child, len(rows), plan)
        indexes, taken = _lock_if_rebuilding(connection, child, child_plan)
        with index_rebuild.indexes_dropped(connection, indexes) if indexes else nullcontext():
            connection.execute(sa.delete(child).where(child_cols.in_(parents)))
            load_rows(connection, child, rows)
        return len(rows), taken
    connection.execute(sa.delete(child).where(child_cols.in_(parents)))
    stage = _temp_table(connection, f"_stage_{child.name}", [child.c[c] for c in columns])
    load_rows(connection, stage, frame)  # COPY names the columns: no reordered copy of the rows
    staged_cols = sa.tuple_(*(stage.c[c] for c in parent_key))
    source = sa.select(*(stage.c[c] for c in columns)).where(staged_cols.in_(parents))
    inserted = _rowcount(connection, sa.insert(child).from_select(columns, source))
    stage.drop(connection)
    return inserted, PathTaken("portable", "as their parents: staged, the children of written parents inserted")


def _written_parents(connection: sa.Connection, affected: sa.Table) -> pd.DataFrame:
    """The link values of every parent the merge inserted or changed."""
    # One array a column: ten times faster to fetch than a row a parent.
    arrays = connection.execute(sa.select(*(sa.func.array_agg(c) for c in affected.c))).one()
    return pd.DataFrame({c.name: values or [] for c, values in zip(affected.c, arrays)})


def _children_of(frame: pd.DataFrame, written: pd.DataFrame, parent_key: list[str]) -> pd.DataFrame:
    """The rows of `frame` whose parent is in `written` (the frame itself if all are)."""
    if len(parent_key) == 1:
        (name,) = parent_key
        mine = frame[name].isin(written[name].dropna()).to_numpy(dtype=bool)
    else:
        links = pd.MultiIndex.from_frame(written[parent_key].dropna())
        mine = pd.MultiIndex.from_frame(frame[parent_key]).isin(links)
    return frame if mine.all() else frame[mine]


def _columns_of_child(child: sa.Table, frame: pd.DataFrame) -> list[str]:
    unknown = [c for c in frame.columns if c not in child.c]
    if unknown:
        raise MergeError(f"columns {unknown} are not in table {child.name}")
    missing = [c for c in child.info["parent_key"] if c not in frame.columns]
    if missing:
        raise MergeError(f"link columns {missing} of table {child.name} are missing from the rows")
    return [c.name for c in child.columns if c.name in frame.columns]
