"""Run days of the `cve` group against the stand-in NVD and a real warehouse."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from dagster import AssetSelection, DagsterInstance, Definitions, ExecuteInProcessResult, define_asset_job

from etl_platform.defs.cve.definitions import defs as cve_defs
from etl_platform.defs.cve.partitions import cve_daily
from etl_platform.defs.cve.resources import NvdResource
from etl_platform.definitions import build_resources
from etl_platform.devservers.nvd import sample_records
from etl_platform.lib.warehouse import engine_for

SAMPLE_DAY = "2023-10-18"
CVE_ASSETS = [*cve_defs.assets, *cve_defs.asset_checks]


def fast_nvd(url: str, **overrides) -> NvdResource:
    """The real client, with a loose rate limit and short backoff so tests stay quick."""
    options = {"requests_per_window": 1000, "backoff_seconds": 0.05, "timeout_seconds": 5.0} | overrides
    return NvdResource(api_url=url, **options)


@pytest.fixture
def run_day(nvd, etl_env, monkeypatch) -> Callable[..., ExecuteInProcessResult]:
    """Materialize the assets and checks of `group:cve` (or a selection of them) for one partition."""
    instance = DagsterInstance.ephemeral()

    def run(partition: str = SAMPLE_DAY, warehouse_url: str | None = None, selection=None, **nvd_options):
        if warehouse_url:
            monkeypatch.setenv("ETL_WAREHOUSE_URL", warehouse_url)
        resources = build_resources() | {"nvd": fast_nvd(nvd.url, **nvd_options)}
        job = define_asset_job("cve_day", selection=selection or AssetSelection.all(), partitions_def=cve_daily)
        definitions = Definitions(assets=CVE_ASSETS, jobs=[job], resources=resources)
        return definitions.resolve_job_def("cve_day").execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False
        )

    return run


def table_counts(url: str) -> dict[str, int]:
    tables = ("cve", "cve_metric", "cve_weakness", "cve_reference", "cve_cpe_match", "cve_change")
    with engine_for(url).connect() as connection:
        existing = set(sa.inspect(connection).get_table_names())
        return {
            name: connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
            for name in tables
            if name in existing
        }


def check_results(result: ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    """(asset key, check name) -> passed, for every check evaluated in the run."""
    return {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }


def record(cve_id: str, last_modified: str, **changes) -> dict:
    """A real sample record under another id and lastModified (and other changed fields)."""
    item = copy.deepcopy(sample_records()[0])
    item["cve"].update({"id": cve_id, "lastModified": last_modified, **changes})
    return item


def bad_score(cve_id: str) -> dict:
    """A record of the sample day whose CVSS base score (12.5) breaks the model's 0..10 rule."""
    bad = record(cve_id, "2023-10-18T23:00:00.000")
    bad["cve"]["metrics"]["cvssMetricV31"][0]["cvssData"]["baseScore"] = 12.5
    return bad


def materialization_metadata(result: ExecuteInProcessResult, key: str) -> dict:
    """Metadata values of the materialization of asset `key` (e.g. "cve/tables/cve") in a run."""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == key:
            return {name: value.value for name, value in materialization.metadata.items()}
    raise KeyError(f"{key} was not materialized")
