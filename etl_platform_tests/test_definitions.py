"""The code location as a user sees it: what `dagster dev` lists and what the CLI runs."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from etl_platform.definitions import defs
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.runs import dagster_cli

EXPECTED_ASSETS = [
    "commerce/clean/fx_rates",
    "commerce/clean/products",
    "commerce/diff/product_changes",
    "commerce/raw/fx_rates",
    "commerce/raw/products",
    "commerce/tables/fx_rate",
    "commerce/tables/product",
    "commerce/tables/product_price_history",
    "cve/clean/cve_cpe_matches",
    "cve/clean/cve_metrics",
    "cve/clean/cve_references",
    "cve/clean/cve_ssvc",
    "cve/clean/cve_weaknesses",
    "cve/clean/cves",
    "cve/diff/cve_changes",
    "cve/raw/cves",
    "cve/tables/cve",
    "cve/tables/cve_change",
    "cve/tables/cve_cpe_match",
    "cve/tables/cve_metric",
    "cve/tables/cve_reference",
    "cve/tables/cve_ssvc",
    "cve/tables/cve_weakness",
    "hr/reports/departments_above_mean",
    "hr/reports/hires_by_quarter",
    "hr/tables/departments",
    "hr/tables/hired_employees",
    "hr/tables/ingest_rejections",
    "hr/tables/jobs",
    "ops/backup/hr_tables",
    "ops/history/fx_rates",
    "ops/retention/raw_files",
    "sales/clean/sales",
    "sales/diff/sale_changes",
    "sales/flat/sale_commissions",
    "sales/flat/sale_price_details",
    "sales/flat/sale_users",
    "sales/flat/sales",
    "sales/raw/sales",
    "sales/tables/sale",
]


def repository():
    return defs.get_repository_def()


def test_the_code_location_holds_exactly_the_expected_assets():
    keys = sorted(key.to_user_string() for key in repository().asset_graph.get_all_asset_keys())

    assert keys == EXPECTED_ASSETS


def test_an_assets_group_is_the_first_part_of_its_key_or_an_opt_in_group_of_that_domain():
    graph = repository().asset_graph
    for key in graph.get_all_asset_keys():
        assert graph.get(key).group_name in (key.path[0], f"{key.path[0]}_extra"), key


def test_every_asset_has_a_description_owners_and_kinds():
    graph = repository().asset_graph
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.owners, key
        assert node.kinds, key


def test_every_cve_asset_shares_the_daily_partitions():
    graph = repository().asset_graph
    partitions = {graph.get(key).partitions_def for key in graph.get_all_asset_keys() if key.path[0] == "cve"}

    assert len(partitions) == 1
    assert next(iter(partitions)).get_first_partition_key() == "1999-01-01"


def test_checks_and_schedules_are_registered():
    repo = repository()
    checks = sorted(
        f"{key.asset_key.to_user_string()}:{key.name}" for key in repo.asset_graph.asset_check_keys
    )

    assert "cve/tables/cve:reconciled_with_source" in checks
    assert "cve/clean/cve_metrics:pandera_schema" in checks
    assert "cve/diff/cve_changes:pandera_schema" in checks
    assert "cve/tables/cve_metric:foreign_keys_intact" in checks
    assert "cve/tables/cve_ssvc:foreign_keys_intact" in checks
    assert "cve/raw/cves:schema_drift" in checks
    assert "ops/backup/hr_tables:restores_exactly" in checks
    assert sorted(s.name for s in repo.schedule_defs) == [
        "commerce_daily_schedule",
        "cve_daily_schedule",
        "hr_backup_schedule",
        "raw_retention_schedule",
        "sales_schedule",
    ]
    assert "sales_sensor" in [s.name for s in repo.sensor_defs]
    assert "replay_quarantine" in [job.name for job in repo.get_all_jobs()]
    assert "sales/tables/sale:every_fetched_sale_loaded" in checks
    assert "sales/clean/sales:pandera_schema" in checks


def test_the_cli_materializes_one_day_of_the_group_into_the_configured_warehouse(nvd, etl_env, postgres_url, tmp_path):
    env = {
        "NVD_API_URL": nvd.url,
        "ETL_WAREHOUSE_URL": postgres_url,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    os.makedirs(env["DAGSTER_HOME"])

    run = dagster_cli(
        "asset", "materialize", "-m", "etl_platform.definitions", "--select", "group:cve", "--partition", "2023-10-18",
        env=env,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    with engine_for(postgres_url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM cve")).scalar_one() == 38


def test_the_cli_materializes_an_empty_day_on_embedded_defaults(nvd, etl_env, tmp_path):
    env = {"NVD_API_URL": nvd.url, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    os.makedirs(env["DAGSTER_HOME"])

    run = dagster_cli(
        "asset", "materialize", "-m", "etl_platform.definitions", "--select", "group:cve", "--partition", "2025-06-01",
        env=env,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert (Path(etl_env["ETL_HOME"]) / "warehouse.db").exists()
    assert (Path(etl_env["ETL_HOME"]) / "storage" / "cve" / "raw" / "cves" / "2025-06-01.json").exists()
