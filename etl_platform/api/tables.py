"""Batch ingestion into the `hr` tables, and paged reads of them (DESIGN.md, "REST API").

`POST /tables/{table}/rows` applies exactly the rules of the CSV migration
(`etl_platform.defs.hr.rules.check_rows`): every field required, typed values, ISO-8601
datetimes, referenced ids that exist in the warehouse (looked up in one query). A row whose id
is already stored is rejected as a duplicate: the API never updates a row. The valid rows are
inserted in id order with `INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id` (on Postgres
from a temporary stage filled by `COPY`), so an id taken by a concurrent batch between the
check and the insert is rejected as a duplicate too, and every id is stored once. The rows
inserted and the rejections logged to `ingest_rejections` (source `api`, the row as received)
commit in one transaction. A row nested deeper than `MAX_DEPTH` levels is rejected before the
rules see it (they, and the log, would recurse once per level), and logged clipped to that depth.

Order of the checks: bearer token (401), table (404), body size and JSON shape (413, 422).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.dialects import postgresql, sqlite

from etl_platform.api import paging
from etl_platform.api.deps import Connection, Engine
from etl_platform.api.values import MAX_DEPTH, clipped, deeper_than
from etl_platform.defs.hr.rules import Rejection, check_rows, log_rejections, references
from etl_platform.defs.hr.tables import INGESTED, ingest_rejections
from etl_platform.lib import settings
from etl_platform.lib.bulk_load import load_rows
from etl_platform.lib.warehouse import is_postgres

router = APIRouter(tags=["tables"])

TOKEN_VARIABLE = "ETL_API_TOKEN"
WRITES_DISABLED = f"writes are disabled: {TOKEN_VARIABLE} is not set on the server"
MAX_ROWS = 1000
MAX_BODY_BYTES = 16 * 1024 * 1024
SOURCE = "api"
READABLE = {**INGESTED, ingest_rejections.name: ingest_rejections}
# Transient conflicts between concurrent transactions (deadlock, serialization failure):
# the whole batch is retried; rows are inserted in id order, so they should not happen.
RETRIED_SQLSTATES = {"40P01", "40001"}
ATTEMPTS = 3


# --- models ----------------------------------------------------------------------------

class RowsIn(BaseModel):
    rows: list[dict[str, Any]] = Field(
        min_length=1,
        description=f"1 to {MAX_ROWS} rows, each an object with every column of the table",
        json_schema_extra={"maxItems": MAX_ROWS},
        examples=[[{"id": 1, "name": "Harold Vogt", "datetime": "2021-11-07T02:48:42Z",
                    "department_id": 2, "job_id": 96}]],
    )


class RowError(BaseModel):
    index: int = Field(description="position of the rejected row in `rows` (0-based)")
    reason: str = Field(
        description="the rule it broke, e.g. `job_id is required`, `duplicate id 7`"
    )


class IngestResult(BaseModel):
    accepted: int = Field(description="rows inserted (committed together)")
    rejected: int = Field(description="rows not inserted, each logged to `ingest_rejections`")
    errors: list[RowError] = Field(description="one entry per rejected row, by index")


class TablePage(BaseModel):
    total: int = Field(description="rows in the table")
    limit: int = Field(description="page size asked for")
    offset: int = Field(description="rows skipped")
    items: list[dict[str, Any]] = Field(
        description="the page, ordered by id; datetimes in UTC; `ingest_rejections.payload` is "
        "the rejected row as received (JSON text)"
    )


# --- auth and table lookup -------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ETL_API_TOKEN",
    description=f"`Authorization: Bearer <token>`; the token is the service's `{TOKEN_VARIABLE}`",
)


async def require_token(  # async: no thread hop for a comparison
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the bearer token equals `ETL_API_TOKEN` (read per request; unset: refuse all)."""
    expected = settings.api_token()
    given = credentials.credentials if credentials else None
    if not expected:  # told apart from a wrong token: the operator, not the client, must act
        raise HTTPException(401, detail=WRITES_DISABLED, headers={"WWW-Authenticate": "Bearer"})
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401, detail="missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def _table(name: str, tables: dict[str, sa.Table]) -> sa.Table:
    try:
        return tables[name]
    except KeyError:
        raise HTTPException(
            404, detail=f"unknown table {name!r}; one of: {', '.join(tables)}"
        ) from None


def _table_path(tables: dict[str, sa.Table]) -> Any:
    """The `table` path parameter: any text (an unknown table is a 404, not a 422), documented
    as the enum of `tables` so that clients and generated requests know the names."""
    names = list(tables)
    return Annotated[
        str, Path(description=f"one of: {', '.join(names)}", json_schema_extra={"enum": names})
    ]


TableName = _table_path(INGESTED)
ReadableTableName = _table_path(READABLE)


# --- POST rows -------------------------------------------------------------------------

@router.post(
    "/tables/{table}/rows",
    response_model=IngestResult,
    summary="Insert a batch of rows",
    description=f"Checks every row with the rules of the table (every field required, typed "
    f"values, ISO-8601 datetimes, referenced ids must exist, an id already stored is a "
    f"duplicate), inserts the valid ones and logs each rejected one to `ingest_rejections`, all "
    f"in one transaction. 1 to {MAX_ROWS} rows per call. Never updates a stored row.",
    dependencies=[Depends(require_token)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RowsIn.model_json_schema()}},
        }
    },
    responses={
        401: {"description": "no bearer token, a wrong one, or `ETL_API_TOKEN` unset"},
        404: {"description": "not an ingestible table"},
        413: {"description": f"more than {MAX_ROWS} rows (nothing written)"},
        422: {"description": "the body is not `{\"rows\": [object, ...]}` with 1 or more rows"},
    },
)
async def post_rows(table: TableName, request: Request, engine: Engine) -> IngestResult:
    target = _table(table, INGESTED)
    rows = _parse_rows(await _read_body(request))
    return await run_in_threadpool(ingest, engine, target, rows)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, detail=f"body over {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, detail=f"body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_rows(body: bytes) -> list[dict[str, Any]]:
    """The rows of a `{"rows": [...]}` body: 413 over MAX_ROWS rows, 422 (worded as FastAPI
    words its validation errors) for anything else than 1 or more JSON objects."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error",
              "input": {}, "ctx": {"error": error.msg}}]
        ) from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if isinstance(rows, list) and len(rows) > MAX_ROWS:
        raise _too_many(len(rows))
    if isinstance(rows, list) and rows and all(type(row) is dict for row in rows):
        return rows  # what RowsIn accepts, without copying every row
    try:
        return RowsIn.model_validate(data).rows
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


def _too_many(count: int) -> HTTPException:
    return HTTPException(413, detail=f"{count} rows: at most {MAX_ROWS} rows per call")


def ingest(engine: sa.Engine, table: sa.Table, records: Sequence[dict[str, Any]]) -> IngestResult:
    """Check, insert and log one batch in one transaction (retried on a transient conflict)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with engine.connect() as connection:
                if is_postgres(connection):
                    _ensure_stage(connection, table)
                with connection.begin():
                    return _ingest(connection, table, records)
        except sa.exc.DBAPIError as error:
            transient = getattr(error.orig, "sqlstate", None) in RETRIED_SQLSTATES
            if attempt == ATTEMPTS or not transient:
                raise
    raise AssertionError("unreachable")


def _ingest(
    connection: sa.Connection, table: sa.Table, records: Sequence[dict[str, Any]]
) -> IngestResult:
    positions, too_deep = _shallow(records)
    shallow = [records[index] for index in positions] if too_deep else records
    checked = check_rows(table, shallow, _known_ids(connection, table, shallow))
    # check_rows numbers the rows it was given, the answer the rows as sent. A reason may quote
    # a field name as sent; Postgres text cannot hold a NUL character.
    rejections = too_deep + [
        replace(r, index=positions[r.index], reason=r.reason.replace("\x00", "\\x00"))
        for r in checked.rejections
    ]
    rejected = {r.index for r in rejections}
    valid = [index for index in range(len(records)) if index not in rejected]
    taken = _insert_new(connection, table, checked.rows)
    if taken:  # stored before, or by a concurrent batch since the check
        for index, row_id in zip(valid, checked.rows["id"].tolist()):
            if row_id in taken:
                rejections.append(Rejection(index, records[index], f"duplicate id {row_id}"))
    rejections.sort(key=lambda r: r.index)
    log_rejections(connection, table.name, rejections, SOURCE)
    return IngestResult(
        accepted=len(valid) - len(taken),
        rejected=len(rejections),
        errors=[RowError(index=r.index, reason=r.reason) for r in rejections],
    )


def _shallow(records: Sequence[dict[str, Any]]) -> tuple[list[int], list[Rejection]]:
    """The positions of the rows nested at most MAX_DEPTH levels, and a rejection of each other
    one (its payload clipped, so that logging it cannot recurse as deep)."""
    positions, too_deep = [], []
    for index, record in enumerate(records):
        flat = all(type(value) not in (dict, list) for value in record.values())  # the usual row
        if flat or not deeper_than(record, MAX_DEPTH):
            positions.append(index)
        else:
            reason = f"row nested deeper than {MAX_DEPTH} levels"
            too_deep.append(Rejection(index, clipped(record), reason))
    return positions, too_deep


def _known_ids(
    connection: sa.Connection, table: sa.Table, records: Sequence[dict[str, Any]]
) -> dict[str, set[int]]:
    """The ids the batch references that exist, per referenced table, in one query."""
    links = references(table)
    if not links:
        return {}
    postgres = is_postgres(connection)
    selects, params = [], {}
    for column, referenced in links.items():
        target = table.metadata.tables[referenced]
        values = (record.get(column) for record in records)
        numbers = {v if type(v) is int else _as_int(v) for v in values}
        wanted = sorted(n for n in numbers if n is not None and -(2**63) <= n < 2**63)
        if postgres:  # one array parameter, however many ids
            params[column] = wanted
            ids = sa.bindparam(column, type_=postgresql.ARRAY(sa.BigInteger))
            matches = target.c.id == sa.any_(ids)
        else:
            matches = target.c.id.in_(wanted)
        selects.append(sa.select(sa.literal(referenced).label("name"), target.c.id).where(matches))
    known: dict[str, set[int]] = {referenced: set() for referenced in links.values()}
    for name, row_id in connection.execute(sa.union_all(*selects), params):
        known[name].add(row_id)
    return known


def _as_int(value: Any) -> int | None:
    # Only narrows the lookup; check_rows decides what is a valid id.
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _insert_new(connection: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> set[int]:
    """Insert the rows whose id is free, in id order (so that concurrent batches sharing ids
    cannot deadlock), with `ON CONFLICT (id) DO NOTHING`; the ids that were taken."""
    if rows.empty:
        return set()
    if is_postgres(connection):
        load_rows(connection, _stage(table), rows)  # COPY
        return set(connection.execute(_insert_from_stage(table)).scalars().all())
    statement = (
        sqlite.insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
    )
    records = rows.sort_values("id").to_dict("records")
    inserted = connection.execute(statement, records).scalars().all()
    return set(rows["id"].tolist()) - set(inserted)


@functools.cache
def _stage(table: sa.Table) -> sa.Table:
    """The temporary table a batch of `table` is staged in on Postgres (see `_ensure_stage`)."""
    columns = (sa.Column(c.name, c.type) for c in table.columns)
    return sa.Table(f"_api_stage_{table.name}", sa.MetaData(), *columns)


@functools.cache
def _insert_from_stage(table: sa.Table) -> sa.Select:
    """`WITH inserted AS (INSERT ... SELECT <stage> ORDER BY id ON CONFLICT (id) DO NOTHING
    RETURNING id) SELECT <staged ids not inserted>`: one round trip, and only the (usually no)
    taken ids come back."""
    stage = _stage(table)
    inserted = (
        postgresql.insert(table)
        .from_select([c.name for c in stage.columns], sa.select(*stage.c).order_by(stage.c.id))
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id)
        .cte("inserted")
    )
    return sa.select(stage.c.id).where(~sa.exists().where(inserted.c.id == stage.c.id))


def _ensure_stage(connection: sa.Connection, table: sa.Table) -> None:
    """Create the stage of `table` once per pooled connection, in a transaction of its own (a
    rollback of a batch must not take it away). Emptied at every commit, never dropped."""
    created = connection.connection.info.setdefault("etl_api_stages", set())
    if table.name in created:
        return
    with connection.begin():
        connection.execute(sa.text(
            f'CREATE TEMPORARY TABLE IF NOT EXISTS "{_stage(table).name}" '
            f'(LIKE "{table.name}") ON COMMIT DELETE ROWS'
        ))
    created.add(table.name)


# --- GET a page ------------------------------------------------------------------------

RowsOffset = paging.offset("rows")


@router.get(
    "/tables/{table}",
    response_model=TablePage,
    summary="Page through an HR table",
    description=f"Rows of `{'`, `'.join(READABLE)}`, ordered by id.",
    responses={404: {"description": "not a readable table"}},
)
def get_rows(
    table: ReadableTableName,
    connection: Connection,
    limit: paging.Limit = paging.DEFAULT_LIMIT,
    offset: RowsOffset = 0,
) -> TablePage:
    target = _table(table, READABLE)
    total = connection.execute(sa.select(sa.func.count()).select_from(target)).scalar_one()
    rows = connection.execute(sa.select(target).order_by(target.c.id).limit(limit).offset(offset))
    items = [{key: _utc(value) for key, value in row._mapping.items()} for row in rows]
    return TablePage(total=total, limit=limit, offset=offset, items=items)


def _utc(value: Any) -> Any:
    """Datetimes as ISO-8601 UTC text (`+00:00`), as the CVE endpoints write them."""
    # SQLite hands back naive values (stored as UTC); Postgres aware ones in the session zone.
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc).isoformat()
        return value.astimezone(timezone.utc).isoformat()
    return value
