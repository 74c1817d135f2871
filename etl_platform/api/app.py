"""The FastAPI service: one router per concern, assembled here around one warehouse engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from etl_platform.api import cves, quarantine, reports, tables
from etl_platform.api.deps import Engine
from etl_platform.api.docs import add_offline_docs
from etl_platform.defs.cve import tables as cve_tables
from etl_platform.defs.hr import tables as hr_tables
from etl_platform.lib import quarantine as quarantine_tables
from etl_platform.lib import settings
from etl_platform.lib.warehouse import create_tables, engine_for

# The tables every router reads; created at startup when missing (with the nullable columns a
# newer release declares, e.g. `cve_cpe_match.configuration_operator`, since the routers select
# them), so that an empty warehouse answers with empty results rather than errors.
WAREHOUSE_METADATA = (cve_tables.metadata, hr_tables.metadata, quarantine_tables.metadata)


class Health(BaseModel):
    status: str = Field(description="`ok` when the warehouse answered a `SELECT 1`")
    warehouse: str = Field(
        description="SQLAlchemy dialect of the warehouse: `postgresql` or `sqlite`"
    )


def create_app(warehouse_url: str | None = None) -> FastAPI:
    """The API on `warehouse_url` (default: `ETL_WAREHOUSE_URL`, read when the app starts)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(warehouse_url or settings.warehouse_url())
        await run_in_threadpool(create_tables, engine, WAREHOUSE_METADATA)
        app.state.engine = engine
        yield
        engine.dispose()

    app = FastAPI(
        title="etl-platform API",
        version="1.0.0",
        description="Read access to the warehouse built by the etl-platform Dagster pipelines "
        "(and to the records their checks quarantined), and batch ingestion into the HR tables.",
        lifespan=lifespan,
        docs_url=None,  # served offline below
        redoc_url=None,
    )
    add_offline_docs(app)
    app.include_router(cves.router, prefix="/api/v1")
    app.include_router(tables.router, prefix="/api/v1")
    app.include_router(reports.router, prefix="/api/v1")
    app.include_router(quarantine.router, prefix="/api/v1")

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["ops"],
        summary="Liveness and warehouse check",
        responses={503: {"description": "the warehouse did not answer"}},
    )
    def healthz(engine: Engine) -> Health:
        """Answers `ok` once the warehouse has run a `SELECT 1`; 503 when it cannot."""
        try:
            with engine.connect() as connection:
                connection.execute(sa.select(sa.literal(1))).scalar_one()
        except sa.exc.SQLAlchemyError as error:
            detail = f"warehouse unavailable: {type(error).__name__}"
            raise HTTPException(503, detail=detail) from error
        return Health(status="ok", warehouse=engine.dialect.name)

    return app
