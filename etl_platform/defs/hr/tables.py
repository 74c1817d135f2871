"""Warehouse tables of the `hr` group (DESIGN.md contract), declared once as data.

`INGESTED` lists the tables that the migration and the batch API load, in load order
(referenced tables first); `ingest_rejections` keeps every row that was not loaded, and why.
"""

import sqlalchemy as sa

from etl_platform.lib.warehouse import declare

metadata = declare(sa.MetaData())  # created by the warehouse resource on first use
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def _source_id() -> sa.Column:
    """The id a row has in the source files (never generated here)."""
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)


def _named(name: str, column: str, comment: str) -> sa.Table:
    """A table of names by id, that hires reference (`departments`, `jobs`)."""
    return sa.Table(name, metadata, _source_id(), sa.Column(column, sa.Text, nullable=False), comment=comment)


departments = _named("departments", "department", "Departments of the company.")
jobs = _named("jobs", "job", "Job titles.")
hired_employees = sa.Table(
    "hired_employees",
    metadata,
    _source_id(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("datetime", UTC_TIMESTAMP, nullable=False, comment="hire date and time (UTC)"),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id"), nullable=False, index=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False, index=True),
    comment="Employees hired, with the department and job they were hired for.",
)
ingest_rejections = sa.Table(
    "ingest_rejections",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False, comment="the row as received (JSON)"),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False, comment="file name, or 'api'"),
    sa.Column("received_at", UTC_TIMESTAMP, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Index("ix_ingest_rejections_table_received", "table_name", "received_at"),
    comment="Every row that was not loaded, with the reason and where it came from.",
)


def _yearly_report(name: str, comment: str, *columns: sa.Column) -> sa.Table:
    """A hiring report: rows keyed by year, then by the key columns among `columns`."""
    return sa.Table(name, metadata, sa.Column("year", sa.Integer, primary_key=True), *columns, comment=comment)


report_hires_by_quarter = _yearly_report(
    "report_hires_by_quarter",
    "Employees hired per department and job in a year, split by quarter.",
    sa.Column("department", sa.Text, primary_key=True),
    sa.Column("job", sa.Text, primary_key=True),
    *(sa.Column(f"q{quarter}", sa.Integer, nullable=False) for quarter in range(1, 5)),
)
report_departments_above_mean = _yearly_report(
    "report_departments_above_mean",
    "Departments that hired more employees in a year than the mean over departments.",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("department", sa.Text, nullable=False),
    sa.Column("hired", sa.Integer, nullable=False),
)

# Load order matters: hired_employees references departments and jobs.
INGESTED = {table.name: table for table in (departments, jobs, hired_employees)}
