"""The `commerce` group as the code location shows it, and the CLI running one of its days."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from dagster import TimeWindowPartitionMapping

from etl_platform.defs.commerce.keys import DIFF, TABLES
from etl_platform.defs.ops.keys import FX_HISTORY
from etl_platform.definitions import defs
from etl_platform_tests.commerce.conftest import SATURDAY
from etl_platform_tests.stored import rows


def graph():
    return defs.get_repository_def().asset_graph


def test_every_commerce_asset_shares_one_daily_partitions_definition_from_1999_01_04():
    asset_graph = graph()
    keys = [k for k in asset_graph.get_all_asset_keys() if k.path[0] == "commerce"]
    partitions = {asset_graph.get(k).partitions_def for k in keys}

    assert len(partitions) == 1
    assert next(iter(partitions)).get_first_partition_key() == "1999-01-04"


def test_the_history_load_lives_outside_the_groups_partitions():
    node = graph().get(FX_HISTORY)

    assert node.group_name == "ops" and node.partitions_def is None


def test_each_day_of_the_diff_and_the_tables_waits_for_the_day_before_so_backfills_run_in_date_order():
    asset_graph = graph()
    for key in (DIFF, TABLES["product"], TABLES["product_price_history"]):
        assert key in asset_graph.get(key).parent_keys
        mapping = asset_graph.get_partition_mapping(key, key)
        assert isinstance(mapping, TimeWindowPartitionMapping)
        assert (mapping.start_offset, mapping.end_offset) == (-1, -1)


def test_the_cli_materializes_one_day_of_the_group(store, ecb, etl_env, postgres_url, tmp_path):
    env = {
        "STORE_API_URL": store.url,
        "ECB_API_URL": f"{ecb.root_url}/service/data",
        "ETL_WAREHOUSE_URL": postgres_url,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    os.makedirs(env["DAGSTER_HOME"])
    dagster = Path(sys.executable).parent / "dagster"

    run = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "etl_platform.definitions"]
        + ["--select", "group:commerce", "--partition", SATURDAY],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    priced = rows(postgres_url, "SELECT price_eur, rate_date FROM product WHERE id = 162")
    assert priced == [(Decimal("18.35"), date(2024, 6, 7))]
