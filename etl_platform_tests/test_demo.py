"""The README's first command (`make demo` runs `python -m etl_platform.demo`) works offline."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

# What the demo must not inherit from the test environment: it runs on embedded defaults.
CONFIGURED = ("ETL_", "NVD_", "STORE_", "ECB_", "SALES_", "AWS_", "DAGSTER_HOME")


def test_the_demo_runs_every_domain_on_embedded_defaults(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith(CONFIGURED)}
    env["ETL_HOME"] = str(tmp_path / "etl")

    run = subprocess.run(
        [sys.executable, "-m", "etl_platform.demo"], env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    warehouse = sqlite3.connect(tmp_path / "etl" / "warehouse.db")
    counts = {
        table: warehouse.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("cve", "cve_change", "product", "product_price_history", "sale")
    }
    assert counts == {"cve": 38, "cve_change": 38, "product": 5, "product_price_history": 5, "sale": 2}
    rate_dates = {row[0] for row in warehouse.execute("select distinct rate_date from product")}
    assert rate_dates == {"2024-12-24"}  # the holiday of 2024-12-25 takes the rate of the day before
    assert (tmp_path / "etl" / "dagster").is_dir()  # the runs are recorded for `dagster dev`
