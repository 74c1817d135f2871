"""The sales diff: each sale of a run against the row `sale` holds, and the load that follows it."""

from __future__ import annotations

import copy

import pandas as pd

from etl_platform.defs.sales import tables
from etl_platform.defs.sales.diff import diff_sales, loadable_sales, stored_sales
from etl_platform.defs.sales.parse import arrow_decimals, flat_sales, typed_sales
from etl_platform.devservers.hotmart import recorded_items
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.runs import failure_message, materialization_metadata
from etl_platform_tests.sales.conftest import sales_rows

DOCS, LIVE = "HP12455690122399", "HP2890253164"  # the recorded sales


def recorded_sales() -> pd.DataFrame:
    return typed_sales(flat_sales(recorded_items()))[0]


def stored_then_diffed(url: str, stored: pd.DataFrame, incoming: pd.DataFrame) -> dict[str, dict]:
    """Load `stored` into `sale`, diff `incoming` against it: transaction -> its diff row."""
    with engine_for(url).begin() as connection:
        merge(connection, tables.sale, arrow_decimals(stored), evolve_schema=True)
        diff = diff_sales(incoming, stored_sales(connection, incoming))
    return {row["purchase_transaction"]: row for row in diff.to_dict("records")}


def test_a_sale_sent_again_as_stored_is_unchanged(any_warehouse_url):
    sales = recorded_sales()

    diff = stored_then_diffed(any_warehouse_url, sales, sales)

    assert {k: row["change"] for k, row in diff.items()} == {DOCS: "unchanged", LIVE: "unchanged"}


def test_a_sale_whose_status_did_not_change_but_another_column_did_is_changed(postgres_url):
    sales = recorded_sales()
    corrected = sales.copy()
    corrected.loc[corrected["purchase_transaction"] == LIVE, "buyer_email"] = "someone.else@example.com"

    diff = stored_then_diffed(postgres_url, sales, corrected)

    assert (diff[LIVE]["change"], diff[DOCS]["change"]) == ("changed", "unchanged")
    assert diff[LIVE]["previous_status"] == diff[LIVE]["status"]


def test_a_status_change_is_changed_with_the_status_before_and_now(postgres_url):
    sales = recorded_sales()
    refunded = sales.copy()
    refunded.loc[refunded["purchase_transaction"] == DOCS, "purchase_status"] = "REFUNDED"

    diff = stored_then_diffed(postgres_url, sales, refunded)

    assert (diff[DOCS]["change"], diff[DOCS]["previous_status"], diff[DOCS]["status"]) == (
        "changed",
        "UNDER_ANALISYS",
        "REFUNDED",
    )


def test_every_sale_is_new_while_sale_does_not_exist(postgres_url):
    with engine_for(postgres_url).connect() as connection:
        diff = diff_sales(recorded_sales(), stored_sales(connection, recorded_sales()))

    assert diff["change"].tolist() == ["new", "new"]
    assert diff["previous_status"].isna().all()


def test_a_field_sale_lacks_changes_only_the_sales_that_carry_a_value(postgres_url):
    sales = recorded_sales()
    widened = sales.assign(purchase_affiliate_code=pd.array([1234, None], dtype="Int64"))

    diff = stored_then_diffed(postgres_url, sales, widened)

    assert {k: row["change"] for k, row in diff.items()} == {DOCS: "changed", LIVE: "unchanged"}


def test_only_the_new_and_changed_sales_are_loadable():
    sales = recorded_sales()
    diff = pd.DataFrame({"purchase_transaction": [DOCS, LIVE], "change": ["unchanged", "changed"]})

    assert loadable_sales(sales, diff)["purchase_transaction"].tolist() == [LIVE]


def test_a_sale_the_diff_does_not_hold_is_loadable():
    sales = recorded_sales()
    diff = pd.DataFrame({"purchase_transaction": [DOCS], "change": ["unchanged"]})

    assert loadable_sales(sales, diff)["purchase_transaction"].tolist() == [LIVE]


def test_a_rerun_skips_every_sale_as_unchanged(run_sales, any_warehouse_url):
    run_sales(warehouse_url=any_warehouse_url, end="2026-05-01")

    result = run_sales(warehouse_url=any_warehouse_url, start="2021-01-01", end="2026-05-01")

    assert result.success, failure_message(result)
    assert materialization_metadata(result, "sales/diff/sale_changes")["changes/unchanged"] == 2
    loaded = materialization_metadata(result, "sales/tables/sale")
    assert (loaded["skipped_unchanged"], loaded["unchanged"], loaded["inserted"], loaded["updated"]) == (2, 2, 0, 0)


def test_a_corrected_sale_is_loaded_and_the_others_skipped(run_sales, hotmart, postgres_url):
    run_sales(warehouse_url=postgres_url, end="2026-05-01")
    corrected = copy.deepcopy(hotmart.items)
    corrected[1]["buyer"]["name"] = "A Corrected Name"
    hotmart.set_items(corrected)

    result = run_sales(warehouse_url=postgres_url, start="2021-01-01", end="2026-05-01")

    assert result.success, failure_message(result)
    diff = materialization_metadata(result, "sales/diff/sale_changes")
    assert (diff["changes/new"], diff["changes/changed"], diff["changes/unchanged"]) == (0, 1, 1)
    loaded = materialization_metadata(result, "sales/tables/sale")
    assert (loaded["updated"], loaded["skipped_unchanged"]) == (1, 1)
    assert sales_rows(postgres_url, "buyer_name")[LIVE] == ("A Corrected Name",)
    assert all(e.passed for e in result.get_asset_check_evaluations())
