"""Flattening and typing the recorded sales: the documentation example and the live record."""

from __future__ import annotations

import copy
import random
from decimal import Decimal

import pandas as pd
import pytest

from etl_platform.defs.sales.parse import arrow_decimals, flat_sales, typed_sales, typed_sales_and_failures
from etl_platform.defs.sales.schemas import SaleModel
from etl_platform.devservers.hotmart import recorded_items
from etl_platform.lib.typed_frames import TypingError
from etl_platform_tests.lib.test_flatten import shuffled

DOCS, LIVE = recorded_items()


def typed(items: list[dict]) -> pd.DataFrame:
    frame, _ = typed_sales(flat_sales(items))
    SaleModel.validate(frame)
    return frame.set_index("purchase_transaction")


def test_the_docs_example_and_the_live_record_type_alike():
    frame = typed([DOCS, LIVE])

    docs, live = frame.loc["HP12455690122399"], frame.loc["HP2890253164"]
    assert docs["purchase_price_value"] == Decimal("235.76") and live["purchase_price_value"] == Decimal("49")
    assert isinstance(live["purchase_hotmart_fee_fixed"], Decimal)
    assert pd.isna(docs["purchase_hotmart_fee_percentage"]) and live["purchase_hotmart_fee_percentage"] == Decimal("5.9")
    assert docs["purchase_recurrency_number"] == 2 and pd.isna(live["purchase_recurrency_number"])
    assert live["purchase_order_date"] == pd.Timestamp("2026-04-11 00:04:51", tz="UTC")
    assert str(frame["purchase_order_date"].dtype) == "datetime64[ns, UTC]"
    assert live["purchase_tracking_source_sck"].endswith("ADS2_Estático_OCC_04_26")


def test_key_order_does_not_matter():
    expected = typed([DOCS, LIVE])
    rng = random.Random(7)
    again = typed([shuffled(DOCS, rng), shuffled(LIVE, rng)])
    pd.testing.assert_frame_equal(again, expected)


def test_each_record_alone_gives_the_same_declared_columns():
    assert list(typed([LIVE]).columns) == list(typed([DOCS]).columns) == list(typed([DOCS, LIVE]).columns)


def test_amounts_sent_as_text_or_integers_are_decimals():
    sale = copy.deepcopy(LIVE)
    sale["purchase"]["price"]["value"] = "49.90"
    sale["purchase"]["hotmart_fee"]["total"] = 4
    row = typed([sale]).iloc[0]
    assert row["purchase_price_value"] == Decimal("49.90") and row["purchase_hotmart_fee_total"] == Decimal("4")


def test_an_unknown_field_is_typed_from_its_values():
    sale = copy.deepcopy(LIVE)
    sale["purchase"]["refund_date"] = 1776000000000
    sale["purchase"]["coupon"] = {"code": "VIP", "discount": 0.4, "items": 2}
    row = typed([sale]).iloc[0]
    assert row["purchase_refund_date"] == pd.Timestamp(1776000000000, unit="ms", tz="UTC")
    assert row["purchase_coupon_discount"] == Decimal("0.4") and row["purchase_coupon_items"] == 2
    assert row["purchase_coupon_code"] == "VIP"


def test_a_sale_listed_twice_is_kept_once():
    frame, dropped = typed_sales(flat_sales([LIVE, DOCS, LIVE]))
    assert dropped == 1 and sorted(frame["purchase_transaction"]) == ["HP12455690122399", "HP2890253164"]


def test_a_bad_amount_is_refused_clearly():
    sale = copy.deepcopy(LIVE)
    sale["purchase"]["price"]["value"] = "forty-nine"
    with pytest.raises(TypingError, match="purchase_price_value"):
        typed_sales(flat_sales([sale]))


def test_a_value_its_column_cannot_take_is_set_null_and_reported_with_its_position():
    sale = copy.deepcopy(LIVE)
    sale["purchase"]["price"]["value"] = "forty-nine"

    typed = typed_sales_and_failures(flat_sales([DOCS, sale]))

    assert typed.failures == {1: ["purchase_price_value: 'forty-nine' is not an amount"]}
    assert typed.records.tolist() == [0, 1] and pd.isna(typed.frame.loc[1, "purchase_price_value"])


def test_a_sale_without_a_transaction_code_is_left_out_of_the_frame_and_reported():
    sale = copy.deepcopy(LIVE)
    del sale["purchase"]["transaction"]

    typed = typed_sales_and_failures(flat_sales([sale, DOCS]))

    assert typed.frame["purchase_transaction"].tolist() == ["HP12455690122399"] and typed.records.tolist() == [1]
    assert typed.failures == {0: ["no purchase.transaction"]} and typed.total == 2


def test_a_sale_listed_twice_is_judged_once_as_listed_last():
    bad = copy.deepcopy(LIVE)
    bad["purchase"]["price"]["value"] = "forty-nine"

    typed = typed_sales_and_failures(flat_sales([bad, DOCS, LIVE]))

    assert (typed.total, typed.duplicates, typed.failures) == (2, 1, {})
    assert typed.records.tolist() == [1, 2]


def test_no_sales_give_an_empty_frame_with_the_declared_columns():
    frame, _ = typed_sales(flat_sales([]))
    SaleModel.validate(frame)
    assert frame.empty and "purchase_price_value" in frame.columns


def test_amounts_become_arrow_decimals_for_loading_without_changing_a_value():
    frame, _ = typed_sales(flat_sales([DOCS, LIVE]))
    frame.loc[0, "purchase_hotmart_fee_total"] = Decimal("36.7512")

    loading = arrow_decimals(frame)

    assert str(loading["purchase_price_value"].dtype) == "decimal128(38, 2)[pyarrow]"
    assert str(loading["purchase_hotmart_fee_total"].dtype) == "decimal128(38, 4)[pyarrow]"
    assert loading["purchase_hotmart_fee_total"].astype(object).tolist() == frame["purchase_hotmart_fee_total"].tolist()
    assert loading["purchase_hotmart_fee_percentage"].isna().tolist() == [True, False]
    assert loading["purchase_status"] is frame["purchase_status"] or loading["purchase_status"].equals(frame["purchase_status"])
