"""Hiring reports of the `hr` group, computed for every year from the warehouse tables.

- `report_hires_by_quarter`: employees hired per department and job in each quarter of a
  year (q1..q4, by the UTC hire date), ordered by department, then job.
- `report_departments_above_mean`: the departments that hired more employees in a year than
  the mean number hired per department that year, where the mean is taken over the
  departments that hired at least once that year (as the original challenge did); ordered by
  the number hired, descending (then by id).

Each materialization replaces a report's rows in one transaction and shows a chart and the
rows in its metadata. The reports are eager: they follow any change of the HR tables.
"""

import base64
import io
from typing import Any

import pandas as pd
import sqlalchemy as sa
from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, MetadataValue, asset
from matplotlib.figure import Figure

from etl_platform.defs.hr import tables
from etl_platform.defs.hr.keys import GROUP, OWNERS, REPORT_KEYS, TABLE_KEYS
from etl_platform.defs.hr.migration import column_schema
from etl_platform.lib.warehouse import WarehouseResource, is_postgres

QUARTERS = ["q1", "q2", "q3", "q4"]
HIRES_COLUMNS = ["datetime", "department_id", "department", "job_id", "job"]
CHART_YEARS = 4
TABLE_ROWS_SHOWN = 500


# --- computations (pure) ---------------------------------------------------------------

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


def replace_report(connection: sa.Connection, table: sa.Table, report: pd.DataFrame) -> None:
    """Replace every row of a report table, inside the caller's transaction."""
    connection.execute(table.delete())
    if len(report):
        records = report.astype(object).to_dict("records")
        connection.execute(table.insert(), records)


# --- charts ----------------------------------------------------------------------------

def png_markdown(png: bytes, alt: str) -> str:
    """A PNG inlined as a markdown image (shown by the Dagster UI in asset metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _recent_years(years: pd.Series) -> list[int]:
    return sorted(int(y) for y in years.unique())[-CHART_YEARS:]


def hires_by_quarter_chart(report: pd.DataFrame) -> bytes:
    """Per recent year, hires per department stacked by quarter (the table splits them by job)."""
    years = _recent_years(report["year"])
    figure = Figure(figsize=(9, 3.6 * max(len(years), 1)), layout="constrained")
    axes = figure.subplots(max(len(years), 1), 1, squeeze=False)[:, 0]
    for ax, year in zip(axes, years):
        by_department = report[report["year"] == year].groupby("department")[QUARTERS].sum()
        bottom = pd.Series(0, index=by_department.index)
        for quarter in QUARTERS:
            ax.bar(by_department.index, by_department[quarter], bottom=bottom, label=quarter.upper())
            bottom = bottom + by_department[quarter]
        ax.set_title(f"Employees hired in {year}, per department and quarter")
        ax.set_ylabel("hired")
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    if not years:
        axes[0].set_title("No hires")
    return _png(figure)


def departments_above_mean_chart(counts: pd.DataFrame) -> bytes:
    """Per recent year, hires per department against the mean; those above it highlighted."""
    years = _recent_years(counts["year"])
    figure = Figure(figsize=(9, 3.6 * max(len(years), 1)), layout="constrained")
    axes = figure.subplots(max(len(years), 1), 1, squeeze=False)[:, 0]
    for ax, year in zip(axes, years):
        of_year = counts[counts["year"] == year].sort_values("hired", ascending=False)
        mean = of_year["hired"].mean()
        colours = ["tab:orange" if hired > mean else "tab:gray" for hired in of_year["hired"]]
        ax.barh(of_year["department"], of_year["hired"], color=colours)
        ax.axvline(mean, color="tab:blue", linestyle="--", label=f"mean {mean:.1f}")
        ax.invert_yaxis()
        ax.set_title(f"Employees hired in {year} per department (above the mean highlighted)")
        ax.set_xlabel("hired")
        ax.legend(fontsize="small")
    if not years:
        axes[0].set_title("No hires")
    return _png(figure)


def report_metadata(report: pd.DataFrame, chart: bytes, title: str) -> dict[str, Any]:
    shown = report.head(TABLE_ROWS_SHOWN)
    rows = shown.to_markdown(index=False) if len(shown) else "(no rows)"
    if len(report) > len(shown):
        rows += f"\n\nFirst {len(shown)} of {len(report)} rows."
    return {
        "dagster/row_count": len(report),
        "rows_by_year": MetadataValue.json(
            {str(year): int(n) for year, n in report["year"].value_counts().sort_index().items()}
        ),
        "chart": MetadataValue.md(png_markdown(chart, title)),
        "rows": MetadataValue.md(rows),
    }


# --- the assets ------------------------------------------------------------------------

_REPORT = dict(
    group_name=GROUP,
    deps=list(TABLE_KEYS.values()),
    kinds={"pandas", "matplotlib", "postgres"},
    owners=OWNERS,
    automation_condition=AutomationCondition.eager(),
)


@asset(
    key=REPORT_KEYS["hires_by_quarter"],
    description=(
        "Number of employees hired for each department and job in each quarter (q1..q4, by UTC "
        "hire date) of every year, ordered by department then job: table "
        "`report_hires_by_quarter`, replaced whenever the HR tables change. Metadata: a chart "
        "(per recent year, hires per department stacked by quarter) and the rows."
    ),
    metadata={
        "dagster/table_name": tables.report_hires_by_quarter.name,
        "dagster/column_schema": column_schema(tables.report_hires_by_quarter),
    },
    **_REPORT,
)
def hires_by_quarter_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    warehouse.ensure_tables(tables.metadata)
    with warehouse.begin() as connection:
        lock_report(connection, tables.report_hires_by_quarter)
        report = hires_by_quarter(read_hires(connection))
        replace_report(connection, tables.report_hires_by_quarter, report)
    context.log.info(f"report_hires_by_quarter: {len(report)} rows")
    chart = hires_by_quarter_chart(report)
    return MaterializeResult(metadata=report_metadata(report, chart, "Hires by quarter"))


@asset(
    key=REPORT_KEYS["departments_above_mean"],
    description=(
        "For every year, the departments (id, name, number hired) that hired more employees "
        "than the mean number hired per department that year, the mean being taken over the "
        "departments that hired at least once that year (as the original challenge did); "
        "ordered by number hired, descending. Table `report_departments_above_mean`, replaced "
        "whenever the HR tables change. Metadata: a chart of every department against the "
        "mean and the rows."
    ),
    metadata={
        "dagster/table_name": tables.report_departments_above_mean.name,
        "dagster/column_schema": column_schema(tables.report_departments_above_mean),
    },
    **_REPORT,
)
def departments_above_mean_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    warehouse.ensure_tables(tables.metadata)
    with warehouse.begin() as connection:
        lock_report(connection, tables.report_departments_above_mean)
        hires = read_hires(connection)
        report = departments_above_mean(hires)
        replace_report(connection, tables.report_departments_above_mean, report)
    context.log.info(f"report_departments_above_mean: {len(report)} rows")
    chart = departments_above_mean_chart(hires_by_department(hires))
    return MaterializeResult(metadata=report_metadata(report, chart, "Departments above the mean"))
