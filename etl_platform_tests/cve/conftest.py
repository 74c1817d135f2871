"""Run days of the `cve` group against the stand-in NVD and a real warehouse."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult

from etl_platform.defs.cve.definitions import defs as cve_defs
from etl_platform.defs.cve.partitions import cve_daily
from etl_platform.defs.cve.resources import NvdResource
from etl_platform.definitions import build_resources
from etl_platform.devservers.nvd import sample_records
from etl_platform_tests import stored
from etl_platform_tests.runs import run_job

SAMPLE_DAY = "2023-10-18"
CVE_ASSETS = [*cve_defs.assets, *cve_defs.asset_checks]
CVE_TABLES = ("cve", "cve_metric", "cve_weakness", "cve_reference", "cve_cpe_match", "cve_change")


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
        return run_job("cve_day", CVE_ASSETS, resources, instance, selection, cve_daily, partition)

    return run


def table_counts(url: str) -> dict[str, int]:
    """Table -> rows, for the `cve` tables the warehouse holds."""
    return stored.table_counts(url, CVE_TABLES)


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
