"""Running assets in process (or through the `dagster` CLI), and reading what a run did.

Every domain's tests run their assets with `run_job` and read the outcome with the readers
below, so that "a materialization's metadata" or "the checks of a run" mean one thing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import (
    AssetCheckEvaluation,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    PartitionsDefinition,
    define_asset_job,
)


def run_job(
    name: str,
    assets: list,
    resources: dict,
    instance: DagsterInstance,
    selection: AssetSelection | None = None,
    partitions_def: PartitionsDefinition | None = None,
    partition: str | None = None,
    run_config: dict | None = None,
) -> ExecuteInProcessResult:
    """One run of a job `name` over `selection` (every asset and check by default) of `assets`.

    Failures are in the result (`raise_on_error=False`): tests assert on them.
    """
    job = define_asset_job(name, selection=selection or AssetSelection.all(), partitions_def=partitions_def)
    definitions = Definitions(assets=assets, jobs=[job], resources=resources)
    return definitions.resolve_job_def(name).execute_in_process(
        run_config=run_config, partition_key=partition, instance=instance, raise_on_error=False
    )


def dagster_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The `dagster` command of this interpreter, with `env` added to the environment."""
    dagster = Path(sys.executable).parent / "dagster"
    return subprocess.run(
        [str(dagster), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def materialization_metadata(result: ExecuteInProcessResult, key: str) -> dict:
    """Metadata values of the materialization of asset `key` (e.g. "cve/tables/cve") in a run."""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == key:
            return {name: value.value for name, value in materialization.metadata.items()}
    raise KeyError(f"{key} was not materialized")


def materialized(result: ExecuteInProcessResult) -> dict[str, dict]:
    """Asset key -> metadata values, for every materialization of a run."""
    return {
        event.asset_key.to_user_string(): {
            name: value.value for name, value in event.event_specific_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def check_results(result: ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    """(asset key, check name) -> passed, for every check evaluated in the run."""
    return {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }


def check_evaluation(result: ExecuteInProcessResult, key: str, check: str) -> AssetCheckEvaluation:
    """The evaluation of check `check` on asset `key` in a run."""
    return next(
        e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == key and e.check_name == check
    )


def failure_message(result: ExecuteInProcessResult) -> str:
    """The errors of every failed step of a run, one after the other (empty if none failed)."""
    return "\n".join(
        str(event.step_failure_data.error) for event in result.all_events if event.is_step_failure
    )
