"""Loading a landed HR file: kept as landed, parsed, checked and upserted in small transactions.

A file is kept as landed under `<storage>/hr/raw/<stem>/` and loaded in transactions of at
most `batch_rows` (1000) rows: the valid rows of a batch are upserted with the generic
`merge` and its rejected rows logged to `ingest_rejections`, together. A corrected file
dropped again therefore updates the rows it changes and loads the rows it completes.
"""

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from dagster import MetadataValue
from upath import UPath

from etl_platform.defs.hr import tables
from etl_platform.defs.hr.keys import GROUP
from etl_platform.defs.hr.resources import LandedFile
from etl_platform.defs.hr.rules import check_rows, log_rejections, references
from etl_platform.lib.storage import PREVIEW_ROWS
from etl_platform.lib.upsert import MergeResult, merge, merge_totals
from etl_platform.lib.warehouse import WarehouseResource

MAX_BATCH_ROWS = 1000
RAW_FOLDER = (GROUP, "raw")


def parse_csv(data: bytes) -> list[list[str]]:
    """Rows of a headerless CSV as lists of fields (blank lines skipped, a BOM ignored)."""
    text = data.decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text, newline="")) if row and any(field.strip() for field in row)]


def raw_path(storage: UPath, landed: LandedFile, data: bytes) -> UPath:
    """Where a landed file is kept: `hr/raw/<stem>/<landed at, UTC>_<content digest>.csv`.

    The landing time orders the copies; the digest tells apart two drops within a second
    and makes keeping the same content again a no-op.
    """
    stem = landed.name.rsplit(".", 1)[0]
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()[:10]
    return storage.joinpath(*RAW_FOLDER, stem, f"{landed.modified:%Y%m%dT%H%M%SZ}_{digest}.csv")


@dataclass
class TableLoad:
    """What loading one file into one table did, for materialization metadata."""

    table: str
    source: str
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    merges: list[MergeResult] = field(default_factory=list)  # of the batches holding valid rows
    transactions: list[int] = field(default_factory=list)
    preview: pd.DataFrame | None = None

    @property
    def merged(self) -> MergeResult:
        """What the batches' merges did, added up."""
        return merge_totals(self.table, self.merges)


def known_ids(connection: sa.Connection, table: sa.Table) -> dict[str, set[int]]:
    """The ids the warehouse holds of every table that `table` references."""
    return {
        referenced: set(connection.execute(sa.select(tables.metadata.tables[referenced].c.id)).scalars())
        for referenced in references(table).values()
    }


def load_records(
    warehouse: WarehouseResource,
    table: sa.Table,
    records: Sequence[Sequence[Any]],
    source: str,
    batch_rows: int = MAX_BATCH_ROWS,
) -> TableLoad:
    """Check and upsert `records` in transactions of at most `batch_rows` rows each.

    A batch's valid rows are merged and its rejected rows logged in the same transaction.
    An id given twice in the file is a duplicate whichever batch it falls in.
    """
    if not 1 <= batch_rows <= MAX_BATCH_ROWS:
        raise ValueError(f"batch_rows must be 1 to {MAX_BATCH_ROWS}, got {batch_rows}")
    load = TableLoad(table=table.name, source=source, read=len(records))
    with warehouse.begin() as connection:
        referenced = known_ids(connection, table)
    taken: set[int] = set()
    for start in range(0, len(records), batch_rows):
        batch = records[start : start + batch_rows]
        with warehouse.begin() as connection:
            checked = check_rows(table, batch, referenced, taken_ids=taken)
            if len(checked.rows):
                load.merges.append(merge(connection, table, checked.rows))
            load.rejected += log_rejections(connection, table.name, checked.rejections, source)
        load.transactions.append(len(batch))
        taken.update(int(i) for i in checked.rows["id"])
        load.loaded += len(checked.rows)
        load.reasons.update(r.reason for r in checked.rejections)
        if load.preview is None and len(checked.rows):
            load.preview = checked.rows.head(PREVIEW_ROWS)
    return load


def table_count(warehouse: WarehouseResource, table: sa.Table) -> int:
    with warehouse.begin() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def load_metadata(load: TableLoad, landed: LandedFile, kept: UPath, total_rows: int) -> dict[str, Any]:
    merged = load.merged
    paths = Counter(result.path for result in load.merges)
    metadata: dict[str, Any] = {
        "source": landed.name,
        "source_version": landed.version,
        "raw_copy": MetadataValue.path(str(kept)),
        "rows_read": load.read,
        "rows_loaded": load.loaded,
        "rows_rejected": load.rejected,
        "inserted": merged.inserted,
        "updated": merged.updated,
        "unchanged": merged.unchanged,
        "rejections_by_reason": MetadataValue.json(dict(load.reasons.most_common())),
        "transactions": len(load.transactions),
        "merge_path": ", ".join(f"{path} ({n})" for path, n in paths.most_common()) or "none",
        "largest_transaction_rows": max(load.transactions, default=0),
        "dagster/row_count": total_rows,
    }
    if load.preview is not None:
        metadata["preview"] = MetadataValue.md(load.preview.to_markdown(index=False))
    return metadata


def latest_rejections(warehouse: WarehouseResource, limit: int = PREVIEW_ROWS) -> pd.DataFrame:
    rejections = tables.ingest_rejections
    columns = [rejections.c.table_name, rejections.c.source, rejections.c.reason, rejections.c.payload]
    with warehouse.begin() as connection:
        rows = connection.execute(sa.select(*columns).order_by(rejections.c.id.desc()).limit(limit)).all()
    return pd.DataFrame(rows, columns=[c.name for c in columns])
