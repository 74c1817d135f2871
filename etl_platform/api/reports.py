"""Read endpoints of the HR hiring reports, one year at a time (the `hr/reports/*` assets).

The reports are computed for every year by the Dagster assets; these endpoints read the
stored rows of one year. A year without hires answers with no rows.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from etl_platform.api.deps import Connection
from etl_platform.defs.hr.tables import report_departments_above_mean, report_hires_by_quarter

router = APIRouter(tags=["reports"])

DEFAULT_YEAR = 2021
YearQuery = Annotated[int, Query(ge=1900, le=2999, description="the year of the hires (UTC)")]


class HiresByQuarterRow(BaseModel):
    department: str = Field(description="department name")
    job: str = Field(description="job title")
    q1: int = Field(description="hired in January to March")
    q2: int = Field(description="hired in April to June")
    q3: int = Field(description="hired in July to September")
    q4: int = Field(description="hired in October to December")


class HiresByQuarter(BaseModel):
    year: int = Field(description="the year reported")
    rows: list[HiresByQuarterRow] = Field(
        description="one row per department and job that hired, ordered by department, then job"
    )


class DepartmentAboveMean(BaseModel):
    id: int = Field(description="department id")
    department: str = Field(description="department name")
    hired: int = Field(description="employees hired in the year")


class DepartmentsAboveMean(BaseModel):
    year: int = Field(description="the year reported")
    rows: list[DepartmentAboveMean] = Field(description="ordered by `hired`, descending (then by id)")


@router.get(
    "/reports/hires-by-quarter",
    response_model=HiresByQuarter,
    summary="Employees hired per department and job, by quarter of a year",
    description="Number of employees hired for each department and job in each quarter of `year`, "
    "ordered by department, then job (by code point, the same on Postgres and SQLite).",
)
def hires_by_quarter(connection: Connection, year: YearQuery = DEFAULT_YEAR) -> HiresByQuarter:
    table = report_hires_by_quarter
    columns = [c for c in table.c if c.name != "year"]
    rows = connection.execute(sa.select(*columns).where(table.c.year == year)).mappings().all()
    # Sorted here rather than by the database: Postgres collations disagree with SQLite's.
    ordered = sorted(rows, key=lambda row: (row["department"], row["job"]))
    return HiresByQuarter(year=year, rows=[HiresByQuarterRow(**row) for row in ordered])


@router.get(
    "/reports/departments-above-mean",
    response_model=DepartmentsAboveMean,
    summary="Departments that hired more than the mean in a year",
    description="Id, name and number hired of the departments that hired more employees in `year` "
    "than the mean number hired per department that year (the mean over the departments that "
    "hired at least once that year), ordered by number hired, descending.",
)
def departments_above_mean(connection: Connection, year: YearQuery = DEFAULT_YEAR) -> DepartmentsAboveMean:
    table = report_departments_above_mean
    rows = connection.execute(
        sa.select(table.c.id, table.c.department, table.c.hired)
        .where(table.c.year == year)
        .order_by(table.c.hired.desc(), table.c.id)
    ).mappings().all()
    return DepartmentsAboveMean(year=year, rows=[DepartmentAboveMean(**row) for row in rows])
