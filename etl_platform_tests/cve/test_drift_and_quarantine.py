"""Real 2026 NVD records (SSVC, `affected`, configuration operators) and one bad record in a day."""

from __future__ import annotations

import json

import pytest

from etl_platform.devservers.nvd import PAGE_2026, sample_records
from etl_platform_tests.cve.conftest import SAMPLE_DAY, bad_score, record, table_counts
from etl_platform_tests.runs import check_evaluation, check_results
from etl_platform_tests.stored import row_dicts

DAY_2026 = "2026-06-17"  # CVE-2023-1389, CVE-2026-1150, CVE-2026-1731: SSVC, `affected`, AND configurations


@pytest.fixture
def records_2026(nvd):
    nvd.add_records(sample_records(PAGE_2026))


def test_a_2026_day_loads_with_cvss_and_ssvc_apart(run_day, records_2026, postgres_url):
    result = run_day(DAY_2026, warehouse_url=postgres_url)

    assert result.success
    assert table_counts(postgres_url)["cve"] == 3
    versions = {row["cvss_version"] for row in row_dicts(postgres_url, "SELECT cvss_version FROM cve_metric")}
    assert versions == {"2.0", "3.1", "4.0"}
    ssvc = row_dicts(
        postgres_url,
        "SELECT c.cve_id, s.exploitation, s.automatable, s.technical_impact, s.version, s.role, s.raw "
        "FROM cve_ssvc s JOIN cve c USING (cve_key) ORDER BY c.cve_id",
    )
    assert [(r["cve_id"], r["exploitation"], r["automatable"], r["technical_impact"]) for r in ssvc] == [
        ("CVE-2023-1389", "active", "yes", "total"),
        ("CVE-2026-1150", "poc", "no", "partial"),
        ("CVE-2026-1731", "active", "yes", "total"),
    ]
    assert {(r["version"], r["role"]) for r in ssvc} == {("2.0.3", "CISA Coordinator")}
    assert json.loads(ssvc[0]["raw"])["source"] == "134c704f-9b21-4f2e-91b3-4a467353bcc0"
    assert check_results(result)[("cve/tables/cve", "reconciled_with_source")]


def test_keys_the_parser_does_not_model_are_reported_as_drift_without_failing_the_day(
    run_day, records_2026, sqlite_url
):
    result = run_day(DAY_2026, warehouse_url=sqlite_url)

    assert result.success
    drift = check_evaluation(result, "cve/raw/cves", "schema_drift")
    assert not drift.passed and drift.severity.value == "WARN"
    assert drift.metadata["schema_drift"].value["cve.affected"] == {"records": 3, "example": "CVE-2023-1389"}
    assert "cve.affected (e.g. CVE-2023-1389)" in drift.description
    raw = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["cve", "raw", "cves"])
    assert "cve.affected" in raw.event_specific_data.materialization.metadata["schema_drift"].value


def test_a_day_without_unknown_keys_passes_the_drift_check(run_day, sqlite_url):
    result = run_day(warehouse_url=sqlite_url)

    assert check_evaluation(result, "cve/raw/cves", "schema_drift").passed


def test_the_configuration_operator_is_kept_with_each_cpe_match(run_day, records_2026, sqlite_url):
    run_day(DAY_2026, warehouse_url=sqlite_url)

    matches = row_dicts(
        sqlite_url,
        "SELECT m.configuration_operator, m.node, m.vulnerable, m.criteria FROM cve_cpe_match m "
        "JOIN cve c USING (cve_key) WHERE c.cve_id = 'CVE-2026-1150' ORDER BY m.node",
    )
    assert [(m["configuration_operator"], m["node"], bool(m["vulnerable"])) for m in matches] == [
        ("AND", 0, True),
        ("AND", 1, False),
    ]
    assert matches[1]["criteria"] == "cpe:2.3:h:totolink:lr350:-:*:*:*:*:*:*:*"


def test_one_invalid_record_is_quarantined_and_the_rest_of_the_day_loads(run_day, nvd, postgres_url):
    nvd.add_records([bad_score("CVE-2023-99999")])

    result = run_day(warehouse_url=postgres_url)

    assert result.success
    assert table_counts(postgres_url)["cve"] == 38
    [kept] = row_dicts(postgres_url, "SELECT * FROM quarantine")
    assert (kept["domain"], kept["asset"], kept["partition"], kept["record_key"]) == (
        "cve", "cve/clean/cves", SAMPLE_DAY, "CVE-2023-99999"
    )
    assert kept["payload"]["cve"]["id"] == "CVE-2023-99999" and kept["replayed_at"] is None
    assert any("base_score" in reason and "12.5" in reason for reason in kept["reasons"])
    assert kept["run_id"] == result.run_id
    gate = check_evaluation(result, "cve/clean/cves", "pandera_schema")
    assert not gate.passed and gate.severity.value == "WARN" and gate.metadata["quarantined"].value == 1
    reconciled = check_evaluation(result, "cve/tables/cve", "reconciled_with_source")
    assert reconciled.passed and reconciled.metadata["quarantined"].value == 1


def test_a_record_the_parser_cannot_read_is_quarantined(run_day, nvd, sqlite_url):
    unreadable = record("CVE-2023-99997", "2023-10-18T23:00:00.000", configurations="not a list")

    nvd.add_records([unreadable])
    result = run_day(warehouse_url=sqlite_url)

    assert result.success and table_counts(sqlite_url)["cve"] == 38
    [kept] = row_dicts(sqlite_url, "SELECT record_key, reasons FROM quarantine")
    assert kept["record_key"] == "CVE-2023-99997" and "unreadable record" in kept["reasons"]


def test_a_replay_after_the_source_is_corrected_loads_the_record(run_day, nvd, postgres_url):
    nvd.add_records([bad_score("CVE-2023-99999")])
    run_day(warehouse_url=postgres_url)
    nvd.add_records([record("CVE-2023-99999", "2023-10-18T23:00:00.000")])

    replay = run_day(warehouse_url=postgres_url)

    assert replay.success and table_counts(postgres_url)["cve"] == 39
    [kept] = row_dicts(postgres_url, "SELECT replayed_at FROM quarantine")
    assert kept["replayed_at"] is not None
    assert check_evaluation(replay, "cve/clean/cves", "pandera_schema").passed
    reconciled = check_evaluation(replay, "cve/tables/cve", "reconciled_with_source")
    assert reconciled.passed and reconciled.metadata["quarantined"].value == 0


def test_a_record_still_bad_on_replay_stays_quarantined_once_with_its_new_reasons(run_day, nvd, sqlite_url):
    nvd.add_records([bad_score("CVE-2023-99999")])
    run_day(warehouse_url=sqlite_url)
    still_bad = record("CVE-2023-99999", "2023-10-18T23:00:00.000", published="yesterday")
    nvd.add_records([still_bad])

    replay = run_day(warehouse_url=sqlite_url)

    assert replay.success and table_counts(sqlite_url)["cve"] == 38
    [kept] = row_dicts(sqlite_url, "SELECT reasons, replayed_at, run_id FROM quarantine")
    assert kept["replayed_at"] is None and kept["run_id"] == replay.run_id
    assert any("published" in reason and "yesterday" in reason for reason in json.loads(kept["reasons"]))
