"""Read endpoint of the quarantine: records a row-level rule set aside while the rest of their
batch loaded (`etl_platform.lib.quarantine`).

HR's rejected rows stay in `ingest_rejections` (its own contract, read at
`/tables/ingest_rejections`); they are listed here too, in the same shape, for the `hr` domain:
one list of everything that did not load. They come after the `quarantine` rows, each part in
id order, so that paging is one `UNION ALL ... ORDER BY origin, id` with a stable order.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from etl_platform.api import paging
from etl_platform.api.deps import Connection
from etl_platform.api.values import MAX_DEPTH, UtcDateTime, parsed_json
from etl_platform.defs.hr.tables import ingest_rejections
from etl_platform.lib.quarantine import quarantine

router = APIRouter(tags=["quarantine"])


class Domain(str, Enum):
    CVE = "cve"
    COMMERCE = "commerce"
    SALES = "sales"
    HR = "hr"


class Origin(str, Enum):
    QUARANTINE = "quarantine"
    INGEST_REJECTIONS = "ingest_rejections"


ORIGINS = list(Origin)  # position = the `origin` number the query sorts by


class QuarantinedRecord(BaseModel):
    origin: Origin = Field(
        description="the table it is kept in: `quarantine`, or `ingest_rejections` (an HR row "
        "the CSV migration or the batch API rejected)"
    )
    id: int = Field(description="its id in the `origin` table")
    domain: str = Field(description="the asset group: `cve`, `commerce`, `sales` or `hr`")
    asset: str = Field(
        description="the asset whose rules it broke (key path, e.g. `cve/cve`); "
        "`hr/tables/<table>` for an ingest rejection"
    )
    partition: str | None = Field(
        None,
        description="the partition (day) or the run's window it came in; for an ingest "
        "rejection, its source (file name or `api`)",
    )
    record_key: str = Field(
        description="its id at the source, or `#<position>` without one; for an ingest "
        "rejection the row's `id` as sent, or `#<rejection id>` without one"
    )
    payload: Any = Field(
        description=f"the record as the source sent it (JSON; what lies deeper than {MAX_DEPTH} "
        "levels is cut to `\"...\"`)"
    )
    reasons: list[str] = Field(description="the rules it broke")
    run_id: str | None = Field(
        None, description="the Dagster run that set it aside last (null for an ingest rejection)"
    )
    quarantined_at: UtcDateTime = Field(description="when it was set aside last (UTC)")
    replayed_at: UtcDateTime | None = Field(
        None,
        description="when a later run loaded it (UTC); null while it is quarantined, and always "
        "for an ingest rejection (it is never retried: a corrected row is sent again)",
    )


class QuarantinePage(BaseModel):
    total: int = Field(description="records matching the filters, over all pages")
    limit: int = Field(description="page size asked for")
    offset: int = Field(description="number of matching records skipped")
    items: list[QuarantinedRecord] = Field(
        description="the page: `quarantine` rows by id, then `ingest_rejections` rows by id"
    )


DomainQuery = Annotated[
    Domain | None, Query(description="only the records of this asset group (all when absent)")
]
OpenOnlyQuery = Annotated[
    bool,
    Query(description="only the records still quarantined (`replayed_at` null); ingest "
          "rejections always are"),
]
OffsetQuery = paging.offset("matching records")


@router.get(
    "/quarantine",
    response_model=QuarantinePage,
    summary="List quarantined records",
    description="Records set aside by a row-level rule while the rest of their batch loaded, "
    "with their reasons, filtered and paged. For the `hr` domain (and when no domain is given) "
    "the rows of `ingest_rejections` are listed too, after the `quarantine` rows.",
)
def list_quarantine(
    connection: Connection,
    domain: DomainQuery = None,
    open_only: OpenOnlyQuery = False,
    limit: paging.Limit = paging.DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
) -> QuarantinePage:
    parts = [_quarantined(domain, open_only)]
    if domain in (None, Domain.HR):
        parts.append(_ingest_rejected())
    total = sum(
        connection.execute(sa.select(sa.func.count()).select_from(part.subquery())).scalar_one()
        for part in parts
    )
    listed = sa.union_all(*parts).subquery("listed")
    rows = connection.execute(
        sa.select(listed)
        .order_by(listed.c.origin, listed.c.id)
        .limit(limit)
        .offset(offset)
    )
    items = [_record(row._mapping) for row in rows]
    return QuarantinePage(total=total, limit=limit, offset=offset, items=items)


def _quarantined(domain: Domain | None, open_only: bool) -> sa.Select:
    q = quarantine.c
    filters = []
    if domain is not None:
        filters.append(q.domain == domain.value)
    if open_only:
        filters.append(q.replayed_at.is_(None))
    return sa.select(
        sa.literal(ORIGINS.index(Origin.QUARANTINE)).label("origin"),
        q.id,
        q.domain,
        q.asset,
        q.partition,
        q.record_key,
        # Text in both parts of the union (ingest_rejections keeps JSON as text): parsed here.
        sa.cast(q.payload, sa.Text).label("payload"),
        sa.cast(q.reasons, sa.Text).label("reasons"),
        q.run_id,
        q.quarantined_at,
        q.replayed_at,
    ).where(*filters)


def _ingest_rejected() -> sa.Select:
    r = ingest_rejections.c
    return sa.select(
        sa.literal(ORIGINS.index(Origin.INGEST_REJECTIONS)),
        r.id,
        sa.literal(Domain.HR.value),
        sa.literal("hr/tables/") + r.table_name,
        r.source,
        sa.null(),  # record_key: read from the payload (see _record)
        r.payload,
        r.reason,
        sa.null(),
        r.received_at,
        sa.null(),
    )


def _record(row: sa.RowMapping) -> QuarantinedRecord:
    origin = ORIGINS[row["origin"]]
    payload = parsed_json(row["payload"])
    if origin is Origin.QUARANTINE:
        record_key, reasons = row["record_key"], _texts(parsed_json(row["reasons"]))
    else:
        record_key, reasons = _row_key(payload, row["id"]), [row["reasons"]]
    fields = {"origin": origin, "record_key": record_key, "payload": payload, "reasons": reasons}
    return QuarantinedRecord(**{**row, **fields})


def _texts(value: Any) -> list[str]:
    """`reasons` as texts, whatever was stored (a JSON list of texts, normally)."""
    values = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else str(item) for item in values]


def _row_key(payload: Any, rejection_id: int) -> str:
    """The id of a rejected row as sent (an object's `id`, a CSV row's first field), else
    `#<rejection id>`."""
    if isinstance(payload, dict):
        row_id = payload.get("id")
    elif isinstance(payload, list) and payload:
        row_id = payload[0]  # positional CSV row: id is the first column of every HR table
    else:
        row_id = None
    if row_id is None or isinstance(row_id, (dict, list)) or str(row_id).strip() == "":
        return f"#{rejection_id}"
    return str(row_id)
