"""`replay_quarantine` on the cve domain: days holding quarantined records run again through `cve_daily`."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, RunsFilter

from etl_platform import definitions
from etl_platform.defs.ops.replay import REPLAY_TAG
from etl_platform_tests.cve.conftest import SAMPLE_DAY, bad_score, record, table_counts
from etl_platform_tests.stored import quarantined


def replay(instance: DagsterInstance, domain: str):
    with pytest.MonkeyPatch.context() as patch:
        # The code location as a run loads it, bound to the environment the test set: the replay's
        # runs of the domain's job load it through `definitions.defs` too.
        patch.setattr(definitions, "defs", definitions.build_definitions())
        return definitions.defs.resolve_job_def("replay_quarantine").execute_in_process(
            run_config={"ops": {"replay_quarantined_records": {"config": {"domain": domain}}}},
            instance=instance,
            raise_on_error=False,
        )


def outcome(result) -> dict:
    """The replay op's output metadata."""
    [output] = [e for e in result.events_for_node("replay_quarantined_records") if e.is_successful_output]
    return {name: value.value for name, value in output.event_specific_data.metadata.items()}


def test_replay_runs_the_day_again_and_marks_the_corrected_record_replayed(
    run_day, nvd, postgres_url, monkeypatch
):
    monkeypatch.setenv("NVD_API_URL", nvd.url)
    nvd.add_records([bad_score("CVE-2023-99999")])
    run_day(warehouse_url=postgres_url)
    nvd.add_records([record("CVE-2023-99999", "2023-10-18T23:00:00.000")])
    instance = DagsterInstance.ephemeral()

    result = replay(instance, "cve")

    assert result.success
    [kept] = quarantined(postgres_url)
    assert kept["replayed_at"] is not None
    assert table_counts(postgres_url)["cve"] == 39
    [child] = instance.get_run_records()[:1]
    assert child.dagster_run.job_name == "cve_daily"
    assert child.dagster_run.tags["dagster/partition"] == SAMPLE_DAY
    assert child.dagster_run.tags[REPLAY_TAG] == result.run_id
    assert (outcome(result)["replayed"], outcome(result)["still_quarantined"]) == (1, 0)


def test_a_record_still_bad_after_replay_stays_quarantined(run_day, nvd, postgres_url, monkeypatch):
    monkeypatch.setenv("NVD_API_URL", nvd.url)
    nvd.add_records([bad_score("CVE-2023-99999")])
    run_day(warehouse_url=postgres_url)

    instance = DagsterInstance.ephemeral()

    result = replay(instance, "cve")

    assert result.success
    [kept] = quarantined(postgres_url)
    [child] = instance.get_run_records(filters=RunsFilter(job_name="cve_daily"))
    assert kept["replayed_at"] is None and kept["run_id"] == child.dagster_run.run_id
    assert outcome(result)["still_quarantined"] == 1


def test_replay_with_nothing_quarantined_runs_nothing(etl_env, sqlite_url, monkeypatch):
    monkeypatch.setenv("ETL_WAREHOUSE_URL", sqlite_url)
    instance = DagsterInstance.ephemeral()

    result = replay(instance, "sales")

    assert result.success
    assert [r.dagster_run.job_name for r in instance.get_run_records()] == ["replay_quarantine"]
