"""The `sales` group end to end: Hotmart stand-in -> files (disk or S3) -> warehouse."""

from __future__ import annotations

import copy
from decimal import Decimal

import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa

from etl_platform.defs.sales.assets import last_cursor
from etl_platform.lib.storage import storage_root
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.runs import failure_message, materialization_metadata
from etl_platform_tests.sales.conftest import DAY0, DAY_MS, day, sales_rows

RECORDED = ("HP12455690122399", "HP2890253164")  # the docs example (UNDER_ANALISYS) and the live record


def test_the_recorded_sales_land_in_s3_and_postgres(run_sales, s3_bucket, postgres_url, monkeypatch):
    monkeypatch.setenv("ETL_STORAGE_URL", f"s3://{s3_bucket}/etl")

    result = run_sales(warehouse_url=postgres_url, end="2026-05-01", csv=True)

    assert result.success, failure_message(result)
    rows = sales_rows(postgres_url, "purchase_status", "purchase_price_value", "purchase_order_date", "purchase_recurrency_number")
    assert list(rows) == list(RECORDED)
    assert rows["HP12455690122399"][:2] == ("UNDER_ANALISYS", Decimal("235.76"))
    assert rows["HP2890253164"][1] == Decimal("49")  # the live API's integer price
    assert rows["HP2890253164"][2] == pd.Timestamp(1775865891000, unit="ms", tz="UTC")
    assert rows["HP2890253164"][3] is None  # recurrency_number is missing from the live record
    files = sorted(p.path.split(f"{s3_bucket}/etl/")[1] for p in storage_root().rglob("*") if p.is_file())
    assert "sales/raw/sales.json" in files and "sales/clean/sales.parquet" in files
    assert any(f.startswith("sales/raw/sales/2026-05-01/") and f.endswith("UNDER_ANALISYS-0001.json") for f in files)
    flat = [f for f in files if f.startswith("sales/flat/sales/2026-05-01/")]
    assert sorted(f.rsplit(".", 1)[1] for f in flat) == ["csv", "parquet"]
    with (storage_root() / next(f for f in flat if f.endswith(".parquet"))).open("rb") as handle:
        assert "purchase_hotmart_fee_percentage" in pq.read_table(handle).column_names
    loaded = materialization_metadata(result, "sales/tables/sale")
    assert loaded["inserted"] == 2 and "purchase_transaction" in loaded["added_columns"]
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_rerunning_a_window_changes_nothing(run_sales, any_warehouse_url):
    run_sales(warehouse_url=any_warehouse_url, end="2026-05-01")
    with engine_for(any_warehouse_url).connect() as connection:
        before = connection.execute(sa.text("SELECT * FROM sale ORDER BY 1")).all()

    result = run_sales(warehouse_url=any_warehouse_url, start="2021-01-01", end="2026-05-01")

    assert result.success, failure_message(result)
    loaded = materialization_metadata(result, "sales/tables/sale")
    assert (loaded["inserted"], loaded["updated"], loaded["unchanged"], loaded["added_columns"]) == (0, 0, 2, "")
    with engine_for(any_warehouse_url).connect() as connection:
        assert connection.execute(sa.text("SELECT * FROM sale ORDER BY 1")).all() == before


def with_field(items: list[dict], value) -> list[dict]:
    """The items with a field the documentation does not know: purchase.affiliate_code."""
    changed = copy.deepcopy(items)
    for item in changed:
        item["purchase"]["affiliate_code"] = value
    return changed


def test_a_new_source_field_adds_a_column(run_sales, hotmart, postgres_url):
    run_sales(warehouse_url=postgres_url, end="2026-05-01")
    hotmart.set_items(with_field(hotmart.items, 1234))

    result = run_sales(warehouse_url=postgres_url, start="2021-01-01", end="2026-05-01")

    assert result.success, failure_message(result)
    loaded = materialization_metadata(result, "sales/tables/sale")
    assert (loaded["added_columns"], loaded["updated"]) == ("purchase_affiliate_code", 2)
    assert sales_rows(postgres_url, "purchase_affiliate_code") == {code: (1234,) for code in RECORDED}


def test_an_incompatible_type_change_is_refused_and_nothing_loaded(run_sales, hotmart, postgres_url):
    hotmart.set_items(with_field(hotmart.items, 1234))
    run_sales(warehouse_url=postgres_url, end="2026-05-01")
    cursor = last_cursor(run_sales.instance)
    recorded = hotmart.items
    later = hotmart.generate_items(1, seed=4, start_ms=DAY0, end_ms=DAY0 + DAY_MS)
    hotmart.set_items(with_field(recorded + later, "AFF-1234"))  # now text, and one more sale
    before = sales_rows(postgres_url, "purchase_affiliate_code", "purchase_status")

    result = run_sales(warehouse_url=postgres_url, start="2021-01-01", end="2026-05-01")

    assert not result.success
    assert "incompatible type change" in failure_message(result)
    assert "purchase_affiliate_code: the table holds integer" in failure_message(result)
    assert sales_rows(postgres_url, "purchase_affiliate_code", "purchase_status") == before  # the new sale is not in
    assert last_cursor(run_sales.instance) == cursor  # the next run pulls that window again


def test_a_refund_updates_the_sale(run_sales, hotmart, postgres_url):
    sales = hotmart.generate_items(6, seed=1, start_ms=DAY0, end_ms=DAY0 + DAY_MS, statuses=["APPROVED"])
    code = sales[3]["purchase"]["transaction"]
    run_sales(warehouse_url=postgres_url, end=day(DAY0 + 2 * DAY_MS))
    hotmart.update_status(code, "REFUNDED")

    result = run_sales(warehouse_url=postgres_url, end=day(DAY0 + 3 * DAY_MS))  # from the cursor, with the overlap

    assert result.success, failure_message(result)
    statuses = sales_rows(postgres_url, "purchase_status")
    assert statuses[code] == ("REFUNDED",)
    assert sum(s == ("APPROVED",) for s in statuses.values()) == 5
    loaded = materialization_metadata(result, "sales/tables/sale")
    assert (loaded["inserted"], loaded["updated"], loaded["unchanged"]) == (0, 1, 5)
    diff = materialization_metadata(result, "sales/diff/sale_changes")
    assert (diff["changes/new"], diff["changes/changed"], diff["changes/unchanged"]) == (0, 1, 5)
    changes = pd.read_parquet(storage_root() / "sales" / "diff" / "sale_changes.parquet")
    refund = changes[changes["change"] == "changed"].iloc[0]
    assert (refund["purchase_transaction"], refund["previous_status"], refund["status"]) == (code, "APPROVED", "REFUNDED")


def test_two_overlapping_windows_load_each_sale_once(run_sales, hotmart, postgres_url, monkeypatch):
    monkeypatch.setenv("SALES_START_DATE", "2026-01-01")
    sales = hotmart.generate_items(20, seed=2, start_ms=DAY0, end_ms=DAY0 + 10 * DAY_MS)
    first = run_sales(warehouse_url=postgres_url, end=day(DAY0 + 5 * DAY_MS), max_results=3)

    second = run_sales(warehouse_url=postgres_url, end=day(DAY0 + 10 * DAY_MS), overlap_hours=48, max_results=3)

    assert first.success and second.success
    raw = materialization_metadata(second, "sales/raw/sales")
    assert raw["window_start"] == day(DAY0 + 3 * DAY_MS)  # the first run's end minus the overlap
    dates = [s["purchase"]["order_date"] for s in sales]
    in_first = sum(d <= DAY0 + 5 * DAY_MS for d in dates)
    in_overlap = sum(DAY0 + 3 * DAY_MS <= d <= DAY0 + 5 * DAY_MS for d in dates)
    loaded = materialization_metadata(second, "sales/tables/sale")
    assert materialization_metadata(first, "sales/tables/sale")["inserted"] == in_first
    assert (loaded["inserted"], loaded["updated"], loaded["unchanged"]) == (20 - in_first, 0, in_overlap)
    assert in_overlap > 0 and in_first < 20
    assert raw["pages"] > 17  # several pages for the busy statuses, one for each of the others
    assert len(sales_rows(postgres_url)) == 20
