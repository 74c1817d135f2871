"""The README's first command (`make demo` runs `python -m etl_platform.demo`) works offline."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# What the demo must not inherit from the test environment: it runs on embedded defaults.
CONFIGURED = ("ETL_", "NVD_", "STORE_", "ECB_", "SALES_", "AWS_", "DAGSTER_HOME", "HR_", "PYTHONWARNINGS")
# How the framework's warnings print: Python's warnings module, or a run's console log.
WARNING_MARKS = ("Warning:", " - WARNING - ")


@dataclass
class Demo:
    home: Path
    run: subprocess.CompletedProcess

    def warehouse(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "warehouse.db")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """One run of the demo, as a new user starts it, shared by the tests below."""
    home = tmp_path_factory.mktemp("demo") / "etl"
    env = {name: value for name, value in os.environ.items() if not name.startswith(CONFIGURED)}
    env["ETL_HOME"] = str(home)

    run = subprocess.run(
        [sys.executable, "-m", "etl_platform.demo"], env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return Demo(home, run)


def test_the_demo_runs_every_domain_on_embedded_defaults(demo):
    warehouse = demo.warehouse()
    counts = {
        table: warehouse.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("cve", "cve_change", "product", "product_price_history", "sale")
    }
    assert counts == {"cve": 38, "cve_change": 38, "product": 5, "product_price_history": 5, "sale": 2}
    rate_dates = {row[0] for row in warehouse.execute("select distinct rate_date from product")}
    assert rate_dates == {"2024-12-24"}  # the holiday of 2024-12-25 takes the rate of the day before
    assert (demo.home / "dagster").is_dir()  # the runs are recorded for `dagster dev`


def test_the_demo_loads_the_hr_samples(demo):
    warehouse = demo.warehouse()
    counts = {
        table: warehouse.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("departments", "jobs", "hired_employees", "ingest_rejections")
    }
    # The challenge files: 1999 hires, 70 of them with an empty field (samples/hr_challenge/SOURCES.md).
    assert counts == {"departments": 12, "jobs": 183, "hired_employees": 1929, "ingest_rejections": 70}
    assert warehouse.execute("select count(*) from report_hires_by_quarter").fetchone()[0] > 0


def test_the_demo_prints_no_framework_warnings(demo):
    lines = (demo.run.stdout + demo.run.stderr).splitlines()
    assert [line for line in lines if any(mark in line for mark in WARNING_MARKS)] == []


def test_the_demo_leaves_each_sqlite_file_holding_its_data(demo, tmp_path):
    # The .db file alone, without its -wal and -shm companions.
    alone = tmp_path / "warehouse.db"
    shutil.copyfile(demo.home / "warehouse.db", alone)
    assert sqlite3.connect(alone).execute("select count(*) from cve").fetchone()[0] == 38
    for path in demo.home.rglob("*.db-wal"):
        assert path.stat().st_size == 0, path
