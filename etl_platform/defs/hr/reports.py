"""Hiring reports of the `hr` group, computed for every year from the warehouse tables.

- `report_hires_by_quarter`: employees hired per department and job in each quarter of a
  year (q1..q4, by the UTC hire date), ordered by department, then job.
- `report_departments_above_mean`: the departments that hired more employees in a year than
  the mean number hired per department that year, where the mean is taken over the
  departments that hired at least once that year (as the original challenge did); ordered by
  the number hired, descending (then by id).

A refresh replaces a report's rows in one transaction (`etl_platform.lib.writes.replace`, after
`lock_report`).
"""

import pandas as pd
import sqlalchemy as sa

from etl_platform.defs.hr import tables
from etl_platform.lib.warehouse import is_postgres

QUARTERS = ["q1", "q2", "q3", "q4"]
HIRES_COLUMNS = ["datetime", "department_id", "department", "job_id", "job"]


def read_hires(connection: sa.Connection) -> pd.DataFrame:
    """Every hire with its department and job names; `datetime` as UTC."""
    hired, departments, jobs = tables.hired_employees, tables.departments, tables.jobs
    statement = sa.select(
        hired.c.datetime, hired.c.department_id, departments.c.department, hired.c.job_id, jobs.c.job
    ).select_from(
        hired.join(departments, hired.c.department_id == departments.c.id).join(jobs, hired.c.job_id == jobs.c.id)
    )
    frame = pd.DataFrame(connection.execute(statement).all(), columns=HIRES_COLUMNS)
    # SQLite hands back naive values (stored as UTC), Postgres aware ones in the session zone.
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True)
    return frame


def hires_by_quarter(hires: pd.DataFrame) -> pd.DataFrame:
    """Hires per year, department and job, split by quarter; ordered by year, department, job."""
    columns = ["year", "department", "job", *QUARTERS]
    if hires.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("year", *QUARTERS) else object) for c in columns})
    frame = hires.assign(year=hires["datetime"].dt.year, quarter=hires["datetime"].dt.quarter)
    counts = (
        frame.groupby(["year", "department", "job", "quarter"])
        .size()
        .unstack("quarter", fill_value=0)
        .reindex(columns=[1, 2, 3, 4], fill_value=0)
    )
    counts.columns = QUARTERS
    report = counts.reset_index().sort_values(["year", "department", "job"], kind="stable")
    return report.astype({c: "int64" for c in ("year", *QUARTERS)}).reset_index(drop=True)[columns]


def hires_by_department(hires: pd.DataFrame) -> pd.DataFrame:
    """Hires per year and department, for the departments that hired at least once that year."""
    if hires.empty:
        return pd.DataFrame({"year": [], "id": [], "department": [], "hired": []}).astype(
            {"year": "int64", "id": "int64", "hired": "int64"}
        )
    return (
        hires.assign(year=hires["datetime"].dt.year)
        .groupby(["year", "department_id", "department"])
        .size()
        .rename("hired")
        .reset_index()
        .rename(columns={"department_id": "id"})
        .astype({"year": "int64", "id": "int64", "hired": "int64"})
    )


def departments_above_mean(hires: pd.DataFrame) -> pd.DataFrame:
    """Departments that hired more than the year's mean over departments that hired that year."""
    counts = hires_by_department(hires)
    mean = counts.groupby("year")["hired"].transform("mean")
    above = counts[counts["hired"] > mean]
    ordered = above.sort_values(["year", "hired", "id"], ascending=[True, False, True], kind="stable")
    return ordered.reset_index(drop=True)[["year", "id", "department", "hired"]]


def lock_report(connection: sa.Connection, table: sa.Table) -> None:
    """Make refreshes of a report take turns, each reading the tables after the last one wrote.

    Postgres: a table lock until the transaction ends (readers are not blocked). SQLite has a
    single writer already.
    """
    if is_postgres(connection):
        name = connection.dialect.identifier_preparer.format_table(table)
        connection.execute(sa.text(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE"))
