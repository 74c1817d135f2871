"""A product the store sends broken is quarantined and the rest of its day loads; too many block the day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from etl_platform.defs.commerce.diff import diff_products
from etl_platform.defs.commerce.schemas import ProductChangeModel
from etl_platform.devservers.fake_store import sample_products
from etl_platform.lib.typed_frames import typed_frame
from etl_platform_tests.commerce.conftest import FRIDAY, SATURDAY, SUNDAY
from etl_platform_tests.runs import check_evaluation, materialization_metadata
from etl_platform_tests.stored import quarantined, rows

# A category of 40 products: one bad product is 2.5% of the day, under the 5% a day may set aside.
WIDE = sorted(p["id"] for p in sample_products()[:40])
BAD = 166
CLEAN = "commerce/clean/products"
DIFF = "commerce/diff/product_changes"
GATE = "pandera_schema"
RECONCILED = "every_listed_product_loaded"


@pytest.fixture
def wide_category(store):
    store.assign_category(WIDE, "Shoes")


def served(store, product_id: int) -> dict:
    return next(p for p in store.products if p["id"] == product_id)


def without(store, product_id: int, field: str) -> dict:
    """Serve one product without one of its fields; the product as now served."""
    products = store.products
    changed = next(p for p in products if p["id"] == product_id)
    del changed[field]
    store.set_products(products)
    return changed


def loaded_ids(url: str) -> list[int]:
    return [id_ for (id_,) in rows(url, "SELECT id FROM product WHERE removed_on IS NULL ORDER BY id")]


def product_and_history(url: str, product_id: int) -> tuple[list, list]:
    return (
        rows(url, "SELECT * FROM product WHERE id = :id", id=product_id),
        rows(url, "SELECT * FROM product_price_history WHERE product_id = :id ORDER BY valid_from", id=product_id),
    )


# ---------------------------------------------------------------- the diff alone


def changes(products: list[dict]):
    return typed_frame([row | {"change": "unchanged"} for row in products], ProductChangeModel)


def product(id_: int, price: str) -> dict:
    return {
        "id": id_, "title": f"product {id_}", "category": "Shoes", "category_id": 4,
        "price_usd": Decimal(price), "price_eur": Decimal(price), "rate_date": date(2024, 6, 7),
    }


def test_a_product_missing_from_the_day_but_listed_at_the_source_is_quarantined_not_removed():
    baseline = changes([product(1, "10.00"), product(2, "20.00"), product(3, "30.00")])
    today = changes([product(1, "10.00")]).drop(columns="change")

    diff = diff_products(today, baseline, listed={1, 2})

    assert dict(zip(diff["id"], diff["change"])) == {1: "unchanged", 2: "quarantined", 3: "removed"}
    assert diff.loc[diff["id"] == 2, "price_usd"].item() == Decimal("20.00")  # its last known values


# ---------------------------------------------------------------- days against the stand-ins


def test_a_product_with_an_invalid_price_is_quarantined_and_the_others_load(
    run_day, store, wide_category, postgres_url
):
    store.update_product(BAD, price=-5)

    result = run_day(FRIDAY)

    assert result.success
    assert loaded_ids(postgres_url) == [id_ for id_ in WIDE if id_ != BAD]
    [kept] = quarantined(postgres_url)
    assert (kept["domain"], kept["asset"], kept["partition"], kept["record_key"]) == ("commerce", CLEAN, FRIDAY, "166")
    assert kept["payload"] == served(store, BAD)
    assert any("price_usd" in reason and "-5" in reason for reason in kept["reasons"])
    assert kept["run_id"] == result.run_id and kept["replayed_at"] is None


def test_the_schema_check_warns_with_the_count_and_a_sample_of_reasons(run_day, store, wide_category):
    store.update_product(BAD, price=-5)

    result = run_day(FRIDAY)

    gate = check_evaluation(result, CLEAN, GATE)
    assert not gate.passed and gate.severity.value == "WARN"
    assert (gate.metadata["records"].value, gate.metadata["quarantined"].value) == (len(WIDE), 1)
    assert "166: " in gate.metadata["reasons_sample"].value and "price_usd" in gate.metadata["reasons_sample"].value


@pytest.mark.parametrize(
    ("field", "key", "reason"), [("price", "166", "no 'price'"), ("id", f"#{WIDE.index(BAD)}", "no 'id'")]
)
def test_a_product_the_parser_cannot_read_is_quarantined_under_its_id_or_its_position(
    run_day, store, wide_category, postgres_url, field, key, reason
):
    sent = without(store, BAD, field)

    result = run_day(FRIDAY)

    assert result.success and len(loaded_ids(postgres_url)) == len(WIDE) - 1
    [kept] = quarantined(postgres_url)
    assert kept["record_key"] == key and kept["payload"] == sent
    assert any(reason in text for text in kept["reasons"])


def test_a_quarantined_product_is_not_removed_and_keeps_its_stored_row_and_prices(
    run_day, store, wide_category, postgres_url
):
    run_day(FRIDAY)
    before = product_and_history(postgres_url, BAD)
    store.update_product(BAD, price=-5)

    result = run_day(SATURDAY)

    assert result.success
    assert product_and_history(postgres_url, BAD) == before  # listed, as_of Friday, its history row still open
    diff = materialization_metadata(result, DIFF)
    assert (diff["changes/removed"], diff["changes/quarantined"]) == (0, 1)
    assert materialization_metadata(result, "commerce/tables/product")["removed"] == 0


def test_the_day_after_a_quarantined_product_is_compared_with_its_last_known_values(
    run_day, store, wide_category, postgres_url
):
    run_day(FRIDAY)
    store.update_product(BAD, price=-5)
    run_day(SATURDAY)
    store.update_product(BAD, price=15)  # as on Friday

    result = run_day(SUNDAY)

    diff = materialization_metadata(result, DIFF)
    assert diff["baseline"] == "the day before"
    assert (diff["changes/new"], diff["changes/unchanged"]) == (0, len(WIDE))
    intervals = "SELECT valid_from, valid_to FROM product_price_history WHERE product_id = :id"
    assert rows(postgres_url, intervals, id=BAD) == [(date(2024, 6, 7), None)]


def test_more_than_5_percent_bad_products_block_the_day_loading_and_quarantining_nothing(
    run_day, store, wide_category, postgres_url
):
    run_day(FRIDAY)
    before = rows(postgres_url, "SELECT * FROM product ORDER BY id")
    for product_id in WIDE[:3]:  # 3 of 40: 7.5%
        store.update_product(product_id, price=-1)

    result = run_day(SATURDAY)

    assert not result.success
    gate = check_evaluation(result, CLEAN, GATE)
    assert not gate.passed and gate.severity.value == "ERROR"
    assert (gate.metadata["rejected"].value, gate.metadata["quarantined"].value) == (3, 0)
    assert "3 of 40" in gate.description
    assert rows(postgres_url, "SELECT * FROM product ORDER BY id") == before
    assert quarantined(postgres_url) == []


def test_a_rerun_after_the_store_corrects_the_product_loads_it_and_marks_it_replayed(
    run_day, store, wide_category, postgres_url
):
    store.update_product(BAD, price=-5)
    run_day(FRIDAY)
    store.update_product(BAD, price=15)

    replay = run_day(FRIDAY)

    assert replay.success
    assert rows(postgres_url, "SELECT price_usd FROM product WHERE id = :id", id=BAD) == [(Decimal("15.00"),)]
    [kept] = quarantined(postgres_url)
    assert kept["replayed_at"] is not None
    assert materialization_metadata(replay, "commerce/tables/product")["replayed_from_quarantine"] == 1
    assert check_evaluation(replay, CLEAN, GATE).passed


def test_a_product_still_bad_on_a_rerun_stays_quarantined_once_with_the_latest_reasons(
    run_day, store, wide_category, postgres_url
):
    store.update_product(BAD, price=-5)
    run_day(FRIDAY)
    store.update_product(BAD, price=-7)

    rerun = run_day(FRIDAY)

    assert rerun.success
    [kept] = quarantined(postgres_url)
    assert kept["replayed_at"] is None and kept["run_id"] == rerun.run_id
    assert kept["payload"]["price"] == -7 and any("-7" in reason for reason in kept["reasons"])


def test_the_listed_products_reconcile_with_the_loaded_and_the_quarantined_ones(run_day, store, wide_category):
    store.update_product(BAD, price=-5)

    result = run_day(FRIDAY)

    reconciled = check_evaluation(result, "commerce/tables/product", RECONCILED)
    assert reconciled.passed
    counts = {name: value.value for name, value in reconciled.metadata.items()}
    assert counts == {"listed_at_source": 40, "clean": 39, "in_product_table": 39, "quarantined": 1}
