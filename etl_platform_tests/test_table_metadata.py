"""What the UI shows of a table: its total rows and a preview after every load, described columns."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import DagsterInstance

from etl_platform.definitions import build_resources, defs
from etl_platform.defs.cve.partitions import cve_daily
from etl_platform.lib.frame_checks import SCHEMA_CHECK
from etl_platform.lib.table_assets import PREVIEW_CELL_CHARS, table_state_metadata
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests import stored
from etl_platform_tests.cve.conftest import CVE_ASSETS, CVE_TABLES, SAMPLE_DAY, fast_nvd, record
from etl_platform_tests.runs import materialized, run_job


def test_table_state_is_the_whole_tables_row_count_and_its_last_rows_made_readable(postgres_url):
    table = sa.Table(
        "note", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text)
    )
    engine = engine_for(postgres_url)
    with engine.begin() as connection:
        table.create(connection)
        assert table_state_metadata(connection, table) == {"dagster/row_count": 0}
        connection.execute(table.insert(), [{"id": i, "body": f"note {i}"} for i in range(1, 8)])
        connection.execute(table.insert(), {"id": 8, "body": "a | b\nsecond line " + "x" * 100})
        state = table_state_metadata(connection, table)

    assert state["dagster/row_count"] == 8
    preview = state["preview"].value
    lines = preview.splitlines()
    assert len(lines) == 2 + 5  # header, rule, the five rows of the highest keys
    assert "note 7" in preview and "note 4" in preview and "note 3" not in preview
    assert "a \\| b second line" in lines[2] and "…" in lines[2]
    assert max(len(cell.strip()) for cell in lines[2].split(" | ")) <= PREVIEW_CELL_CHARS + 2


def test_every_parquet_layer_checked_against_a_model_describes_every_column():
    graph = defs.resolve_asset_graph()
    modelled = {check.asset_key for check in graph.asset_check_keys if check.name == SCHEMA_CHECK}
    assert len(modelled) >= 10
    for key in modelled:
        schema = graph.get(key).metadata["dagster/column_schema"]
        assert schema.columns and all(column.description for column in schema.columns), key


def test_a_cve_day_reports_every_tables_total_rows_and_described_clean_columns(nvd, etl_env, postgres_url, monkeypatch):
    monkeypatch.setenv("ETL_WAREHOUSE_URL", postgres_url)
    instance = DagsterInstance.ephemeral()
    resources = build_resources() | {"nvd": fast_nvd(nvd.url)}
    first = run_job("cve_day", CVE_ASSETS, resources, instance, partitions_def=cve_daily, partition=SAMPLE_DAY)
    assert first.success
    nvd.add_records([record("CVE-2023-99999", "2023-10-19T08:00:00.000")])

    second = run_job("cve_day", CVE_ASSETS, resources, instance, partitions_def=cve_daily, partition="2023-10-19")

    assert second.success
    metadata = materialized(second)
    counts = stored.table_counts(postgres_url, CVE_TABLES)
    cve = metadata["cve/tables/cve"]
    # The run inserted one CVE; the table holds the first day's too.
    assert (cve["inserted"], cve["dagster/row_count"]) == (1, counts["cve"]) and counts["cve"] > 1
    assert "CVE-2023-99999" in cve["preview"]
    for table in CVE_TABLES:
        assert metadata[f"cve/tables/{table}"]["dagster/row_count"] == counts[table], table
        assert metadata[f"cve/tables/{table}"]["preview"], table
    clean = metadata["cve/clean/cves"]["dagster/column_schema"]
    assert [c.name for c in clean.columns][:2] == ["cve_id", "cve_key"]
    assert all(column.description for column in clean.columns)
    assert clean.columns[0].description == "CVE identifier"


def test_the_first_day_of_the_cve_partitions_1999_01_01_is_materializable(nvd, etl_env, postgres_url, monkeypatch):
    monkeypatch.setenv("ETL_WAREHOUSE_URL", postgres_url)
    first = cve_daily.get_first_partition_key()
    resources = build_resources() | {"nvd": fast_nvd(nvd.url)}

    instance = DagsterInstance.ephemeral()
    result = run_job("cve_day", CVE_ASSETS, resources, instance, partitions_def=cve_daily, partition=first)

    assert first == "1999-01-01"
    assert result.success
    assert materialized(result)["cve/tables/cve"]["dagster/row_count"] == 0
