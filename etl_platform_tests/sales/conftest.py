"""Run the `sales` group against the Hotmart stand-in and a real warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from dagster import AssetSelection, ExecuteInProcessResult, instance_for_test

from etl_platform.defs.sales.definitions import defs as sales_defs
from etl_platform.defs.sales.keys import CORE_ASSETS, RAW_SALES
from etl_platform.defs.sales.resources import HotmartResource
from etl_platform.definitions import build_resources
from etl_platform.devservers.hotmart import HotmartStandIn
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.runs import run_job

CLIENT_ID, CLIENT_SECRET = "sales-client", "sales-secret"
DAY_MS = 86_400_000
DAY0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def hotmart():
    with HotmartStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def sales_env(etl_env, hotmart, monkeypatch) -> dict[str, str]:
    env = {
        "SALES_API_URL": hotmart.api_url,
        "SALES_AUTH_URL": hotmart.auth_url,
        "SALES_CLIENT_ID": CLIENT_ID,
        "SALES_CLIENT_SECRET": CLIENT_SECRET,
        "SALES_START_DATE": "2021-01-01",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**etl_env, **env}


def fast_hotmart(**overrides) -> HotmartResource:
    """The real client (URLs and credentials bound to the environment) with short backoff."""
    return build_resources(hotmart={"backoff_seconds": 0.05, "timeout_seconds": 5.0} | overrides)["hotmart"]


@pytest.fixture
def run_sales(sales_env, monkeypatch) -> Iterator[Callable[..., ExecuteInProcessResult]]:
    """Materialize the `sales_history` assets (one instance for the test: the cursor carries over)."""
    with instance_for_test() as instance:
        yield _runner(instance, monkeypatch)


def _runner(instance, monkeypatch) -> Callable[..., ExecuteInProcessResult]:

    def run(
        warehouse_url: str | None = None,
        start: str | None = None,
        end: str | None = None,
        overlap_hours: float | None = None,
        csv: bool = False,
        selection=None,
        **hotmart_options,
    ) -> ExecuteInProcessResult:
        if warehouse_url:
            monkeypatch.setenv("ETL_WAREHOUSE_URL", warehouse_url)
        window = {k: v for k, v in {"start": start, "end": end, "overlap_hours": overlap_hours}.items() if v is not None}
        config = {"ops": {"sales__raw__sales": {"config": window}, "sales__flat__sales": {"config": {"csv": csv}}}}
        resources = build_resources() | {"hotmart": fast_hotmart(**hotmart_options)}
        selection = selection or AssetSelection.assets(*CORE_ASSETS)
        return run_job("sales_run", list(sales_defs.assets), resources, instance, selection, run_config=config)

    run.instance = instance  # type: ignore[attr-defined]
    return run


def sales_rows(url: str, *columns: str) -> dict[str, tuple]:
    """transaction -> the given columns, for every row of `sale`."""
    selected = ", ".join(("purchase_transaction", *columns))
    with engine_for(url).connect() as connection:
        rows = connection.execute(sa.text(f"SELECT {selected} FROM sale ORDER BY purchase_transaction")).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def day(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


__all__ = ["RAW_SALES", "CLIENT_ID", "CLIENT_SECRET", "DAY_MS", "DAY0"]
