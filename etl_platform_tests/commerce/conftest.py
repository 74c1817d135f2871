"""Run days of the `commerce` group against the Fake Store and ECB stand-ins and real Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from dagster import AssetSelection, DagsterInstance, Definitions, ExecuteInProcessResult, define_asset_job

from etl_platform.defs.commerce.definitions import defs as commerce_defs
from etl_platform.defs.commerce.partitions import commerce_daily
from etl_platform.defs.commerce.resources import EcbResource, FakeStoreResource
from etl_platform.definitions import build_resources
from etl_platform.devservers import EcbStandIn, FakeStoreStandIn
from etl_platform.lib.warehouse import engine_for

COMMERCE = [*commerce_defs.assets, *commerce_defs.asset_checks]
# Recorded products re-categorised into "Shoes" (the recording has none there); prices 20, 36, 15, 30, 8.
SHOES = [162, 163, 166, 169, 170]
FRIDAY, SATURDAY, SUNDAY, MONDAY = "2024-06-07", "2024-06-08", "2024-06-09", "2024-06-10"


@pytest.fixture
def store() -> Iterator[FakeStoreStandIn]:
    with FakeStoreStandIn() as server:
        server.assign_category(SHOES, "Shoes")
        yield server


@pytest.fixture
def ecb() -> Iterator[EcbStandIn]:
    with EcbStandIn() as server:
        yield server


def fast(resource_class, **options):
    """The real client, with short backoff and timeouts so tests stay quick."""
    return resource_class(**({"backoff_seconds": 0.05, "timeout_seconds": 5.0} | options))


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
        job = define_asset_job("commerce_day", selection=selection, partitions_def=commerce_daily)
        definitions = Definitions(assets=COMMERCE, jobs=[job], resources=resources)
        return definitions.resolve_job_def("commerce_day").execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False
        )

    return run


def rows(url: str, query: str, **params) -> list[tuple]:
    with engine_for(url).connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(query), params).all()]


def check_results(result: ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    return {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }


def materialization_metadata(result: ExecuteInProcessResult, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == key:
            return {name: value.value for name, value in materialization.metadata.items()}
    raise KeyError(f"{key} was not materialized")


def failure_message(result: ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.to_string()


def auth_calls(store: FakeStoreStandIn) -> dict[str, int]:
    paths = {"login": "/api/v1/auth/login", "refresh": "/api/v1/auth/refresh-token", "create": "/api/v1/users"}
    return {
        name: sum(1 for r in store.requests if r["method"] == "POST" and r["path"].rstrip("/") == path)
        for name, path in paths.items()
    }
