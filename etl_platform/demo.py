"""The README's first command: run the main job on embedded defaults and show where results are.

Starts loopback stand-ins of the external APIs (serving the shipped real records) and runs,
into local files and the SQLite warehouse under `ETL_HOME`:
- `cve_daily`: one day of NVD CVEs (the main job);
- `commerce_daily`: the store's "Shoes" priced at the ECB rate of a TARGET holiday, so the
  rate of the business day before it is used;
- `sales_history`: the recorded Hotmart sales, flattened and upserted;
- `hr_migration`: the HR challenge CSVs dropped in the landing place, loaded and reported on.
Runs are recorded in `DAGSTER_HOME`, so `dagster dev` shows them afterwards. At the end every
SQLite database's write-ahead log is checkpointed, so each `.db` file holds the data by itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa

from etl_platform.lib import settings
from etl_platform.lib.storage import storage_root

SAMPLE_DAY = "2023-10-18"  # the day the shipped NVD records were last modified
COMMERCE_DAY = "2024-12-25"  # a TARGET holiday: priced at the rate of 2024-12-24
# Recorded products filed under "Shoes" for the demo (the recording has none in that category).
SHOES = [162, 163, 166, 169, 170]
SALES_START = "2021-01-01"  # the recorded sales are from 2021 and 2024
HR_SAMPLES = files("etl_platform") / "samples" / "hr_challenge"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", default=SAMPLE_DAY, help=f"CVE day to materialize (default {SAMPLE_DAY})")
    parser.add_argument("--commerce-day", default=COMMERCE_DAY, help=f"commerce day (default {COMMERCE_DAY})")
    parser.add_argument("--only-cve", action="store_true", help="run the main job only")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(settings.etl_home() / "dagster"))
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    from dagster import DagsterInstance

    from etl_platform.definitions import build_definitions

    instance = DagsterInstance.get()

    def run(job: str, partition: str | None = None) -> bool:
        print(f"\n== {job}" + (f", partition {partition}" if partition else "") + " ...")
        # Built afresh: each step points the environment at its stand-ins first.
        result = build_definitions().resolve_job_def(job).execute_in_process(
            partition_key=partition,
            instance=instance,
            # Errors only: the demo prints what it loaded, and the framework's warnings here are
            # expected (e.g. a first commerce day has no day before it to diff against).
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            raise_on_error=False,
        )
        if not result.success:
            print(f"{job} failed; see the step errors above.", file=sys.stderr)
        return result.success

    steps: list[tuple[Callable, Callable[[], bool], Callable[[], None]]] = [
        (_nvd, lambda: run("cve_daily", args.partition), _show_cve),
    ]
    if not args.only_cve:
        steps += [
            (_commerce_sources, lambda: run("commerce_daily", args.commerce_day), _show_commerce),
            (_sales_source, lambda: run("sales_history"), _show_sales),
            (_hr_landing, lambda: run("hr_migration"), _show_hr),
        ]
    try:
        for sources, execute, show in steps:
            with sources():
                if not execute():
                    return 1
            show()
    finally:
        instance.dispose()
        _checkpoint_sqlite()

    print(f"\nWarehouse {settings.warehouse_url()}; files under {storage_root()}")
    print(
        "Next:\n"
        "  make dev    # Dagster UI on http://127.0.0.1:3000 (these runs are in its history; DAGSTER_PORT=...)\n"
        "  make api    # REST API on http://127.0.0.1:8000/docs, e.g. /api/v1/cves?severity=HIGH (API_PORT=...;\n"
        "              # writes need ETL_API_TOKEN=<token>)\n"
    )
    return 0


@contextmanager
def _env(**values: str) -> Iterator[None]:
    """Point the pipeline at the stand-ins unless the user already set a variable."""
    for name, value in values.items():
        os.environ.setdefault(name, value)
    yield


@contextmanager
def _nvd() -> Iterator[None]:
    from etl_platform.devservers import NvdStandIn

    with NvdStandIn() as nvd, _env(NVD_API_URL=nvd.url):
        print(f"NVD stand-in at {nvd.url}")
        yield


@contextmanager
def _commerce_sources() -> Iterator[None]:
    from etl_platform.devservers import EcbStandIn, FakeStoreStandIn

    with ExitStack() as stack:
        store = stack.enter_context(FakeStoreStandIn())
        ecb = stack.enter_context(EcbStandIn())
        store.assign_category(SHOES, "Shoes")
        stack.enter_context(
            _env(STORE_API_URL=store.url, ECB_API_URL=f"{ecb.root_url}/service/data", ECB_HISTORY_URL=ecb.history_url)
        )
        print(f"Fake Store stand-in at {store.url}; ECB stand-in at {ecb.root_url}")
        yield


@contextmanager
def _sales_source() -> Iterator[None]:
    from etl_platform.devservers import HotmartStandIn

    with HotmartStandIn() as hotmart, _env(
        SALES_API_URL=hotmart.api_url,
        SALES_AUTH_URL=hotmart.auth_url,
        SALES_CLIENT_ID="standin-client",
        SALES_CLIENT_SECRET="standin-secret",
        SALES_START_DATE=SALES_START,
    ):
        print(f"Hotmart stand-in at {hotmart.url}")
        yield


@contextmanager
def _hr_landing() -> Iterator[None]:
    """The shipped HR challenge CSVs dropped in the default landing place (a landing place the
    user set with `HR_LANDING_URL` is loaded as it is)."""
    from etl_platform.defs.hr.resources import LANDING_FILES

    if settings.env("HR_LANDING_URL"):
        print(f"HR landing place {os.environ['HR_LANDING_URL']} (HR_LANDING_URL; loaded as it is)")
    else:
        landing = settings.etl_home() / "landing" / "hr"  # the hr_landing resource's default
        landing.mkdir(parents=True, exist_ok=True)
        for name in LANDING_FILES:
            with (HR_SAMPLES / name).open("rb") as sample, open(landing / name, "wb") as dropped:
                shutil.copyfileobj(sample, dropped)
        print(f"HR samples dropped in {landing}")
    yield


def _checkpoint_sqlite() -> None:
    """Move each SQLite database's write-ahead log into its `.db` file (the warehouse and the
    instance's storage), so that a copy of the file alone holds the data."""
    databases = [Path(p) for p in Path(os.environ["DAGSTER_HOME"]).rglob("*.db")]
    url = sa.make_url(settings.warehouse_url())
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        from etl_platform.lib.warehouse import dispose_engines

        dispose_engines()
        databases.append(Path(url.database))
    for database in databases:
        if database.is_file():
            with closing(sqlite3.connect(database, timeout=60)) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _query(statement: str) -> list[sa.Row]:
    from etl_platform.lib.warehouse import engine_for

    with engine_for(settings.warehouse_url()).connect() as connection:
        return list(connection.execute(sa.text(statement)))


def _counts(*tables: str) -> None:
    for table in tables:
        print(f"  {table:<22} {_query(f'select count(*) from {table}')[0][0]:>6} rows")


def _show_cve() -> None:
    _counts("cve", "cve_metric", "cve_weakness", "cve_reference", "cve_cpe_match", "cve_change")


def _show_commerce() -> None:
    _counts("fx_rate", "product", "product_price_history")
    for row in _query("select id, title, price_usd, price_eur, rate_date from product order by id limit 5"):
        print(f"  product {row.id}: {row.title[:30]:<30} USD {float(row.price_usd):8.2f}  EUR {float(row.price_eur):8.2f}  rate of {row.rate_date}")


def _show_hr() -> None:
    _counts("departments", "jobs", "hired_employees", "ingest_rejections")


def _show_sales() -> None:
    _counts("sale")
    for row in _query("select purchase_transaction, purchase_status, purchase_price_value from sale"):
        print(f"  sale {row.purchase_transaction}: {row.purchase_status} {row.purchase_price_value}")


if __name__ == "__main__":
    sys.exit(main())
