"""Run days of the `commerce` group against the Fake Store and ECB stand-ins and real Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult

from etl_platform.defs.commerce.definitions import defs as commerce_defs
from etl_platform.defs.commerce.partitions import commerce_daily
from etl_platform.defs.commerce.resources import EcbResource, FakeStoreResource
from etl_platform.definitions import build_resources
from etl_platform.devservers import FakeStoreStandIn
from etl_platform_tests.runs import run_job

COMMERCE = [*commerce_defs.assets, *commerce_defs.asset_checks]
# Recorded products re-categorised into "Shoes" (the recording has none there); prices 20, 36, 15, 30, 8.
SHOES = [162, 163, 166, 169, 170]
FRIDAY, SATURDAY, SUNDAY, MONDAY = "2024-06-07", "2024-06-08", "2024-06-09", "2024-06-10"


@pytest.fixture
def store() -> Iterator[FakeStoreStandIn]:
    with FakeStoreStandIn() as server:
        server.assign_category(SHOES, "Shoes")
        yield server


def fast(resource_class, **options):
    """The real client bound to the environment as the code location binds it (and set up, so a
    test may call `.client()`), with short backoff and timeouts so tests stay quick; `options` win."""
    key = {FakeStoreResource: "store", EcbResource: "ecb"}[resource_class]
    bound = build_resources(**{key: {"backoff_seconds": 0.05, "timeout_seconds": 5.0} | options})[key]
    return bound.process_config_and_initialize()


@pytest.fixture
def run_day(store, ecb, etl_env, postgres_url, monkeypatch) -> Callable[..., ExecuteInProcessResult]:
    """Materialize `group:commerce` with its checks (or a selection) for one partition, on Postgres."""
    instance = DagsterInstance.ephemeral()
    monkeypatch.setenv("ETL_WAREHOUSE_URL", postgres_url)
    monkeypatch.setenv("STORE_API_URL", store.url)
    monkeypatch.setenv("ECB_API_URL", f"{ecb.root_url}/service/data")
    monkeypatch.setenv("ECB_HISTORY_URL", ecb.history_url)

    def run(partition: str = FRIDAY, selection=None, store_options=None, ecb_options=None, warehouse_url=None):
        if warehouse_url:
            monkeypatch.setenv("ETL_WAREHOUSE_URL", warehouse_url)
        resources = build_resources() | {
            "store": fast(FakeStoreResource, **(store_options or {})),
            "ecb": fast(EcbResource, **(ecb_options or {})),
        }
        selection = selection or AssetSelection.groups("commerce")
        return run_job("commerce_day", COMMERCE, resources, instance, selection, commerce_daily, partition)

    return run


def auth_calls(store: FakeStoreStandIn) -> dict[str, int]:
    paths = {"login": "/api/v1/auth/login", "refresh": "/api/v1/auth/refresh-token", "create": "/api/v1/users"}
    return {
        name: sum(1 for r in store.requests if r["method"] == "POST" and r["path"].rstrip("/") == path)
        for name, path in paths.items()
    }
