"""Freshness: every warehouse table and report has a check bounded by its group's cadence plus grace;
a table whose last update is older than that fails it (ERROR), a fresh one passes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    Definitions,
    MetadataValue,
    RunRequest,
    build_sensor_context,
    define_asset_job,
    instance_for_test,
)

from etl_platform.definitions import FRESHNESS, NEVER_STALE, defs, freshness_policy
from etl_platform.lib.freshness import FRESHNESS_SENSOR
from etl_platform_tests.runs import check_evaluation

CHECK = "freshness_check"


def fresh_keys() -> list[AssetKey]:
    graph = defs.resolve_asset_graph()
    return sorted(
        (key for key in graph.get_all_asset_keys() if key.path[1] in ("tables", "reports") and key not in NEVER_STALE),
        key=AssetKey.to_user_string,
    )


def test_every_table_and_report_has_a_freshness_check_bounded_by_its_cadence_and_grace():
    graph = defs.resolve_asset_graph()
    keys = fresh_keys()
    assert {key.path[0] for key in keys} == set(FRESHNESS)
    for key in keys:
        spec = graph.get_check_spec(AssetCheckKey(key, CHECK))
        bound = spec.metadata["dagster/freshness_params"].value["lower_bound_delta_seconds"]
        assert bound == FRESHNESS[key.path[0]].bound.total_seconds(), key
    assert FRESHNESS["sales"].bound == timedelta(minutes=15)
    assert FRESHNESS["cve"].bound > timedelta(days=1) and FRESHNESS["commerce"].bound > timedelta(days=1)
    assert defs.resolve_sensor_def(FRESHNESS_SENSOR) is not None


def evaluate(instance, key: AssetKey):
    """Run the freshness check of `key` alone, as the freshness sensor's run does."""
    policy = freshness_policy([key])
    job = define_asset_job("freshness", selection=AssetSelection.all_asset_checks())
    definitions = Definitions.merge(policy, Definitions(jobs=[job]))
    result = definitions.resolve_job_def("freshness").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    return check_evaluation(result, key.to_user_string(), CHECK)


def updated(instance, key: AssetKey, ago: timedelta) -> None:
    """Record that `key` was last updated `ago` (a materialization reported with its update time)."""
    at = time.time() - ago.total_seconds()
    instance.report_runless_asset_event(
        AssetMaterialization(key, metadata={"dagster/last_updated_timestamp": MetadataValue.timestamp(at)})
    )


@pytest.mark.parametrize(
    "key", ["sales/tables/sale", "cve/tables/cve", "hr/reports/hires_by_quarter"]
)
def test_a_table_left_stale_fails_its_freshness_check_and_a_fresh_one_passes(key):
    key = AssetKey.from_user_string(key)
    bound = FRESHNESS[key.path[0]].bound
    with instance_for_test() as instance:
        never = evaluate(instance, key)
        assert not never.passed and never.severity == AssetCheckSeverity.ERROR

        updated(instance, key, ago=bound + timedelta(minutes=1))
        stale = evaluate(instance, key)
        assert not stale.passed and stale.severity == AssetCheckSeverity.ERROR
        assert stale.metadata["dagster/last_updated_timestamp"].value < time.time() - bound.total_seconds()

        updated(instance, key, ago=bound - timedelta(minutes=5))
        assert evaluate(instance, key).passed


def test_the_freshness_sensor_runs_checks_never_evaluated():
    with instance_for_test() as instance:
        sensor = defs.resolve_sensor_def(FRESHNESS_SENSOR)
        request = sensor(build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(request, RunRequest)
        assert set(request.asset_check_keys) == {AssetCheckKey(key, CHECK) for key in fresh_keys()}
