"""The `cve` group end to end: stand-in NVD -> files -> warehouse, on Postgres and SQLite."""

from __future__ import annotations

import pyarrow.parquet as pq
import sqlalchemy as sa
from upath import UPath

from etl_platform.devservers.nvd import Fault
from etl_platform.lib import merge_plan
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.cve.conftest import SAMPLE_DAY, record, table_counts
from etl_platform_tests.runs import check_results, materialization_metadata

SAMPLE_COUNTS = {"cve": 38, "cve_metric": 48, "cve_weakness": 46, "cve_reference": 56, "cve_cpe_match": 56, "cve_change": 38}


def test_a_day_lands_in_every_table_with_all_checks_passing(run_day, any_warehouse_url):
    result = run_day(warehouse_url=any_warehouse_url)

    assert result.success
    assert table_counts(any_warehouse_url) == SAMPLE_COUNTS
    checks = check_results(result)
    assert checks[("cve/tables/cve", "reconciled_with_source")]
    assert all(checks.values()), checks


def test_a_loaded_cve_has_its_english_description_and_metrics(run_day, any_warehouse_url):
    run_day(warehouse_url=any_warehouse_url)

    with engine_for(any_warehouse_url).connect() as connection:
        cve = connection.execute(sa.text("SELECT * FROM cve WHERE cve_id = 'CVE-2023-27314'")).mappings().one()
        metrics = connection.execute(
            sa.text("SELECT cvss_version, source, base_score, base_severity FROM cve_metric WHERE cve_key = :k"),
            {"k": cve["cve_key"]},
        ).all()
    assert cve["cve_key"] == 2023 * 10**10 + 27314
    assert cve["description"].startswith("ONTAP 9 versions prior to 9.8P19")
    assert cve["vuln_status"] == "Analyzed"
    assert sorted((v, s, float(b), sev) for v, s, b, sev in metrics) == [
        ("3.1", "nvd@nist.gov", 7.5, "HIGH"),
        ("3.1", "security-alert@netapp.com", 7.5, "HIGH"),
    ]


def test_rerunning_a_day_changes_nothing(run_day, postgres_url):
    run_day(warehouse_url=postgres_url)
    with engine_for(postgres_url).connect() as connection:
        before = connection.execute(sa.text("SELECT * FROM cve ORDER BY cve_id")).all()

    result = run_day(warehouse_url=postgres_url)

    assert result.success
    assert table_counts(postgres_url) == SAMPLE_COUNTS
    with engine_for(postgres_url).connect() as connection:
        assert connection.execute(sa.text("SELECT * FROM cve ORDER BY cve_id")).all() == before
    loaded = materialization_metadata(result, "cve/tables/cve")
    assert (loaded["inserted"], loaded["updated"]) == (0, 0)


def test_an_empty_day_is_a_valid_empty_partition(run_day, postgres_url):
    result = run_day("2025-06-01", warehouse_url=postgres_url)

    assert result.success
    assert table_counts(postgres_url)["cve"] == 0
    assert all(check_results(result).values())


def test_a_changed_cve_replaces_its_children_and_records_the_change(run_day, nvd, postgres_url):
    run_day(warehouse_url=postgres_url)
    changed = record("CVE-2023-27314", "2023-10-19T08:00:00.000", metrics={}, references=[{"url": "https://example.org/fix"}])
    nvd.add_records([changed])

    result = run_day("2023-10-19", warehouse_url=postgres_url)

    assert result.success
    with engine_for(postgres_url).connect() as connection:
        key = 2023 * 10**10 + 27314
        assert connection.execute(sa.text("SELECT count(*) FROM cve_metric WHERE cve_key = :k"), {"k": key}).scalar() == 0
        urls = connection.execute(sa.text("SELECT url FROM cve_reference WHERE cve_key = :k"), {"k": key}).scalars().all()
        changes = connection.execute(
            sa.text("SELECT partition_date, change FROM cve_change WHERE cve_key = :k ORDER BY partition_date"), {"k": key}
        ).all()
    assert urls == ["https://example.org/fix"]
    assert [(str(day), change) for day, change in changes] == [("2023-10-18", "new"), ("2023-10-19", "changed")]


def test_days_loaded_on_the_bulk_path_land_as_row_by_row(run_day, nvd, postgres_url, monkeypatch):
    # The thresholds of a 300k-CVE day, lowered to the sample's 38: copy, drop and rebuild indexes.
    # (The assets plan their merges themselves: no `merge(..., plan=)` reaches them from a job.)
    monkeypatch.setattr(merge_plan, "DIRECT_COPY_MIN_ROWS", 0)
    monkeypatch.setattr(merge_plan, "REBUILD_MIN_ROWS", 0)
    monkeypatch.setattr(merge_plan, "REBUILD_MIN_SHARE", 0)
    key = 2023 * 10**10 + 27314
    references = sa.text("SELECT url FROM cve_reference WHERE cve_key = :k")
    first = run_day(warehouse_url=postgres_url)
    first_counts = table_counts(postgres_url)
    with engine_for(postgres_url).connect() as connection:
        replaced = len(connection.execute(references, {"k": key}).all())
    nvd.add_records([record("CVE-2023-27314", "2023-10-19T08:00:00.000", references=[{"url": "https://example.org/fix"}])])

    second = run_day("2023-10-19", warehouse_url=postgres_url)

    assert first.success and second.success
    assert all(check_results(first).values()) and all(check_results(second).values())
    assert first_counts == SAMPLE_COUNTS
    assert materialization_metadata(second, "cve/tables/cve")["updated"] == 1
    assert {materialization_metadata(run, "cve/tables/cve")["merge_path"] for run in (first, second)} == {"rebuild"}
    assert materialization_metadata(first, "cve/tables/cve_reference")["merge_path"] == "rebuild"
    counts = table_counts(postgres_url)
    assert (counts["cve"], counts["cve_change"]) == (38, 39)
    assert counts["cve_reference"] == SAMPLE_COUNTS["cve_reference"] - replaced + 1
    with engine_for(postgres_url).connect() as connection:
        assert connection.execute(references, {"k": key}).scalars().all() == ["https://example.org/fix"]


def test_days_loaded_out_of_order_keep_the_newer_version(run_day, nvd, any_warehouse_url):
    old = record("CVE-2024-0001", "2024-01-10T10:00:00.000", descriptions=[{"lang": "en", "value": "old"}])
    new = record("CVE-2024-0001", "2024-01-11T10:00:00.000", descriptions=[{"lang": "en", "value": "new"}])
    nvd.replace_records([new])
    run_day("2024-01-11", warehouse_url=any_warehouse_url)
    nvd.replace_records([old])

    result = run_day("2024-01-10", warehouse_url=any_warehouse_url)

    assert result.success
    with engine_for(any_warehouse_url).connect() as connection:
        assert connection.execute(sa.text("SELECT description FROM cve")).scalar_one() == "new"
        changes = connection.execute(sa.text("SELECT count(*) FROM cve_change")).scalar_one()
    assert changes == 1
    assert materialization_metadata(result, "cve/diff/cve_changes")["changes/superseded"] == 1


def test_more_than_five_percent_of_a_day_invalid_blocks_the_load_and_leaves_the_warehouse_untouched(
    run_day, nvd, postgres_url
):
    run_day(warehouse_url=postgres_url)
    with engine_for(postgres_url).connect() as connection:
        before = connection.execute(sa.text("SELECT * FROM cve ORDER BY cve_id")).all()
    bad = record("CVE-2023-99999", "2023-10-19T01:00:00.000")
    bad["cve"]["metrics"]["cvssMetricV31"][0]["cvssData"]["baseScore"] = 12.5
    nvd.add_records([bad, record("CVE-2023-99998", "2023-10-19T02:00:00.000")])

    result = run_day("2023-10-19", warehouse_url=postgres_url)

    evaluation = next(e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "cve_metrics")
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert not [e for e in result.get_asset_materialization_events() if "tables" in e.asset_key.path]
    with engine_for(postgres_url).connect() as connection:
        assert connection.execute(sa.text("SELECT * FROM cve ORDER BY cve_id")).all() == before
        assert connection.execute(sa.text("SELECT count(*) FROM quarantine")).scalar_one() == 0
    gate = next(e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "cves" and not e.passed)
    assert "12.5" in gate.metadata["reasons_sample"].value
    assert "1 of 2 records" in gate.description


def test_throttling_and_server_errors_are_retried(run_day, nvd, postgres_url):
    nvd.inject(Fault.status(429, retry_after=1))
    nvd.inject(Fault.status(503))
    nvd.inject(Fault.status(403))

    result = run_day(warehouse_url=postgres_url)

    assert result.success
    assert table_counts(postgres_url)["cve"] == 38
    assert len(nvd.requests) == 4


def test_a_body_cut_short_is_fetched_again_and_the_day_loads_exactly(run_day, nvd, postgres_url):
    nvd.inject(Fault.cut_short())
    nvd.inject(Fault.cut_short(chunked=True))

    result = run_day(warehouse_url=postgres_url)

    assert result.success
    assert table_counts(postgres_url) == SAMPLE_COUNTS
    assert check_results(result)[("cve/tables/cve", "reconciled_with_source")]
    assert len(nvd.requests) == 3


def test_a_malformed_page_fails_the_partition_with_a_clear_error_and_loads_nothing(run_day, nvd, postgres_url):
    nvd.inject(Fault.malformed(), times=10)

    result = run_day(warehouse_url=postgres_url)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "not valid JSON" in failure.event_specific_data.error.to_string()
    assert table_counts(postgres_url).get("cve", 0) == 0


def test_paging_over_several_pages_keeps_every_page_and_record(run_day, etl_env, postgres_url):
    result = run_day(warehouse_url=postgres_url, results_per_page=10)

    assert result.success
    assert materialization_metadata(result, "cve/raw/cves")["pages"] == 4
    assert table_counts(postgres_url)["cve"] == 38
    folder = UPath(etl_env["ETL_HOME"]) / "storage" / "cve" / "raw" / "cves" / SAMPLE_DAY
    assert sorted(p.name for p in folder.iterdir()) == [
        "page-000000000.json", "page-000000010.json", "page-000000020.json", "page-000000030.json"
    ]


def test_clean_layer_is_typed_parquet_per_partition(run_day, etl_env, postgres_url):
    run_day(warehouse_url=postgres_url)

    path = UPath(etl_env["ETL_HOME"]) / "storage" / "cve" / "clean" / "cves" / f"{SAMPLE_DAY}.parquet"
    schema = pq.read_schema(str(path))
    assert str(schema.field("last_modified").type) == "timestamp[ns, tz=UTC]"
    assert pq.read_metadata(str(path)).num_rows == 38


def test_s3_storage_end_to_end(run_day, s3_bucket, monkeypatch, postgres_url):
    import boto3

    monkeypatch.setenv("ETL_STORAGE_URL", f"s3://{s3_bucket}/etl")

    result = run_day(warehouse_url=postgres_url)

    assert result.success
    assert table_counts(postgres_url)["cve"] == 38
    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert f"etl/cve/raw/cves/{SAMPLE_DAY}/page-000000000.json" in keys
    assert f"etl/cve/raw/cves/{SAMPLE_DAY}.json" in keys
    assert f"etl/cve/clean/cve_metrics/{SAMPLE_DAY}.parquet" in keys
    assert f"etl/cve/diff/cve_changes/{SAMPLE_DAY}.parquet" in keys


def test_reconciliation_notices_a_warehouse_that_went_short(run_day, postgres_url):
    from dagster import AssetCheckKey, AssetKey, AssetSelection

    run_day(warehouse_url=postgres_url)
    with engine_for(postgres_url).begin() as connection:
        connection.execute(sa.text("DELETE FROM cve WHERE cve_id = 'CVE-2023-27314'"))

    # Dagster runs no partitioned check alone; the raw fetch beside it leaves the warehouse as it is.
    check = AssetCheckKey(AssetKey(["cve", "tables", "cve"]), "reconciled_with_source")
    selection = AssetSelection.checks(check) | AssetSelection.assets(AssetKey(["cve", "raw", "cves"]))
    result = run_day(warehouse_url=postgres_url, selection=selection)

    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "reconciled_with_source")
    assert not evaluation.passed
    assert evaluation.metadata["api_total_results"].value == 38
    assert evaluation.metadata["warehouse_rows"].value == 37


def test_each_table_says_which_merge_path_it_took(run_day, any_warehouse_url):
    result = run_day(warehouse_url=any_warehouse_url)

    expected = "staged" if any_warehouse_url.startswith("postgresql") else "portable"
    cve = materialization_metadata(result, "cve/tables/cve")
    assert cve["merge_path"] == expected and cve["merge_reason"]
    assert materialization_metadata(result, "cve/tables/cve_change")["merge_path"] == expected
