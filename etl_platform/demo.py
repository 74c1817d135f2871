"""The README's first command: run the main job on embedded defaults and show where results are.

Starts loopback stand-ins of the external APIs (serving the shipped real records) and runs,
into local files and the SQLite warehouse under `ETL_HOME`:
- `cve_daily`: one day of NVD CVEs (the main job);
- `commerce_daily`: the store's "Shoes" priced at the ECB rate of a TARGET holiday, so the
  rate of the business day before it is used;
- `sales_history`: the recorded Hotmart sales, flattened and upserted.
Runs are recorded in `DAGSTER_HOME`, so `dagster dev` shows them afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import sqlalchemy as sa

from etl_platform.lib import settings
from etl_platform.lib.storage import storage_root

SAMPLE_DAY = "2023-10-18"  # the day the shipped NVD records were last modified
COMMERCE_DAY = "2024-12-25"  # a TARGET holiday: priced at the rate of 2024-12-24
# Recorded products filed under "Shoes" for the demo (the recording has none in that category).
SHOES = [162, 163, 166, 169, 170]
SALES_START = "2021-01-01"  # the recorded sales are from 2021 and 2024


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
        result = build_definitions().get_job_def(job).execute_in_process(
            partition_key=partition,
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
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
        ]
    for sources, execute, show in steps:
        with sources():
            if not execute():
                return 1
        show()

    print(f"\nWarehouse {settings.warehouse_url()}; files under {storage_root()}")
    print(
        "Next:\n"
        "  make dev    # Dagster UI on http://127.0.0.1:3000 (these runs are in its history)\n"
        "  make api    # REST API on http://127.0.0.1:8000/docs, e.g. /api/v1/cves?severity=HIGH\n"
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


def _show_sales() -> None:
    _counts("sale")
    for row in _query("select purchase_transaction, purchase_status, purchase_price_value from sale"):
        print(f"  sale {row.purchase_transaction}: {row.purchase_status} {row.purchase_price_value}")


if __name__ == "__main__":
    sys.exit(main())
