"""The `commerce` group end to end: stand-in store and ECB -> files -> Postgres."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from etl_platform.defs.commerce.tables import product
from etl_platform.lib.warehouse import engine_for

from etl_platform_tests.commerce.conftest import FRIDAY, MONDAY, SATURDAY, SHOES, SUNDAY
from etl_platform_tests.runs import check_results, failure_message, materialization_metadata
from etl_platform_tests.stored import rows

FRIDAY_RATE = Decimal("1.0898")  # ECB, USD per EUR, 2024-06-07
TABLES = ("fx_rate", "product", "product_price_history")


def price_of_162(url: str) -> tuple:
    return rows(url, "SELECT price_eur, rate_date FROM product WHERE id = 162")[0]


def test_a_day_prices_the_category_in_usd_and_eur_with_every_check_passing(run_day, postgres_url):
    result = run_day(FRIDAY)

    assert result.success
    assert all(check_results(result).values()), check_results(result)
    products = rows(postgres_url, "SELECT id, category, price_usd, price_eur, rate_date FROM product ORDER BY id")
    assert [p[0] for p in products] == SHOES
    assert products[0] == (162, "Shoes", Decimal("20.00"), Decimal("18.35"), date(2024, 6, 7))
    usd = "SELECT rate FROM fx_rate WHERE rate_date = '2024-06-07' AND base = 'EUR' AND quote = 'USD'"
    assert rows(postgres_url, usd) == [(FRIDAY_RATE,)]
    history = rows(
        postgres_url,
        "SELECT product_id, price_eur, valid_from, valid_to FROM product_price_history ORDER BY product_id",
    )
    assert history[0] == (162, Decimal("18.35"), date(2024, 6, 7), None)
    assert len(history) == len(SHOES)


def test_a_weekend_day_takes_fridays_rate_with_fridays_date(run_day, postgres_url):
    result = run_day(SATURDAY)

    assert result.success
    assert price_of_162(postgres_url) == (Decimal("18.35"), date(2024, 6, 7))
    assert materialization_metadata(result, "commerce/diff/product_changes")["rate_date"] == FRIDAY


@pytest.mark.parametrize("blank", ["", "NaN"])
def test_a_holiday_sent_as_an_empty_observation_takes_the_last_published_rate(run_day, ecb, postgres_url, blank):
    ecb.blank_observation(MONDAY, blank)

    result = run_day(MONDAY)

    assert result.success
    assert price_of_162(postgres_url) == (Decimal("18.35"), date(2024, 6, 7))
    assert materialization_metadata(result, "commerce/clean/fx_rates")["days_without_value"] == MONDAY
    assert not rows(postgres_url, "SELECT * FROM fx_rate WHERE rate_date = :d", d=date(2024, 6, 10))


def test_the_jsondata_format_gives_the_same_prices(run_day, postgres_url):
    result = run_day(MONDAY, ecb_options={"format": "jsondata"})

    assert result.success
    assert price_of_162(postgres_url) == (Decimal("18.59"), date(2024, 6, 10))


def test_a_price_change_closes_one_history_row_and_opens_another(run_day, store, postgres_url):
    run_day(SATURDAY)
    store.update_product(162, price=25.5)

    result = run_day(SUNDAY)

    assert result.success
    history = rows(
        postgres_url,
        "SELECT product_id, price_usd, price_eur, rate_date, valid_from, valid_to FROM product_price_history"
        " ORDER BY product_id, valid_from",
    )
    saturday, sunday = date(2024, 6, 8), date(2024, 6, 9)
    assert [row for row in history if row[0] == 162] == [
        (162, Decimal("20.00"), Decimal("18.35"), date(2024, 6, 7), saturday, sunday),
        (162, Decimal("25.50"), Decimal("23.40"), date(2024, 6, 7), sunday, None),
    ]
    assert all(row[5] is None for row in history if row[0] != 162)
    assert rows(postgres_url, "SELECT price_usd, as_of FROM product WHERE id = 162") == [(Decimal("25.50"), sunday)]
    assert materialization_metadata(result, "commerce/diff/product_changes")["changes/changed"] == 1


def test_a_removed_product_keeps_its_row_and_its_history_is_closed(run_day, store, postgres_url):
    run_day(SATURDAY)
    store.remove_products([170])

    result = run_day(SUNDAY)

    assert result.success
    sunday = date(2024, 6, 9)
    assert rows(postgres_url, "SELECT removed_on FROM product WHERE id = 170") == [(sunday,)]
    assert rows(postgres_url, "SELECT count(*) FROM product WHERE removed_on IS NULL") == [(len(SHOES) - 1,)]
    assert rows(postgres_url, "SELECT valid_from, valid_to FROM product_price_history WHERE product_id = 170") == [
        (date(2024, 6, 8), sunday)
    ]
    assert materialization_metadata(result, "commerce/diff/product_changes")["changes/removed"] == 1


def test_rerunning_a_day_changes_nothing(run_day, store, postgres_url):
    run_day(SATURDAY)
    store.update_product(162, price=25.5)
    store.remove_products([170])
    run_day(SUNDAY)
    snapshot = {table: rows(postgres_url, f"SELECT * FROM {table} ORDER BY 1, 2") for table in TABLES}

    result = run_day(SUNDAY)

    assert result.success
    assert {table: rows(postgres_url, f"SELECT * FROM {table} ORDER BY 1, 2") for table in TABLES} == snapshot
    product = materialization_metadata(result, "commerce/tables/product")
    history = materialization_metadata(result, "commerce/tables/product_price_history")
    assert (product["inserted"], product["updated"], product["removed"]) == (0, 0, 0)
    assert [history[kind] for kind in ("opened", "closed", "deleted", "reopened", "rewritten")] == [0] * 5


def test_a_day_older_than_the_latest_loaded_changes_no_product_or_history(run_day, store, postgres_url):
    run_day(MONDAY)
    before = {table: rows(postgres_url, f"SELECT * FROM {table} ORDER BY 1, 2") for table in TABLES[1:]}
    store.update_product(162, price=99)

    result = run_day(SATURDAY)

    assert result.success
    assert materialization_metadata(result, "commerce/tables/product")["late"] is True
    assert {table: rows(postgres_url, f"SELECT * FROM {table} ORDER BY 1, 2") for table in before} == before


def test_an_empty_category_is_a_valid_empty_day_with_a_warning(run_day, postgres_url):
    result = run_day(FRIDAY, store_options={"category": "Miscellaneous"})

    assert result.success
    assert "no products" in materialization_metadata(result, "commerce/raw/products")["warning"]
    assert rows(postgres_url, "SELECT count(*) FROM product") == [(0,)]
    assert all(check_results(result).values())


def test_an_unknown_category_fails_naming_it(run_day):
    result = run_day(FRIDAY, store_options={"category": "No Such Thing"})

    assert not result.success
    assert "no category named 'No Such Thing'" in failure_message(result)


def test_money_is_exact_on_sqlite_too(run_day, store, sqlite_url):
    store.update_product(162, price=0.125)  # half-even to the cent: 0.12; 0.12 / 1.0898 = 0.1101...

    result = run_day(FRIDAY, warehouse_url=sqlite_url)

    assert result.success
    assert all(check_results(result).values())
    with engine_for(sqlite_url).connect() as connection:
        query = sa.select(product.c.id, product.c.price_usd, product.c.price_eur).order_by(product.c.id)
        prices = connection.execute(query).all()
    assert prices[0] == (162, Decimal("0.12"), Decimal("0.11"))
    assert prices[1] == (163, Decimal("36.00"), Decimal("33.03"))
    assert all(isinstance(value, Decimal) for _, usd, eur in prices for value in (usd, eur))


def test_days_run_in_date_order_record_a_new_eur_price_only_when_the_rate_changes(run_day, postgres_url):
    for day in (FRIDAY, SATURDAY, SUNDAY, MONDAY):
        assert run_day(day).success

    history = rows(
        postgres_url,
        "SELECT price_eur, rate_date, valid_from, valid_to FROM product_price_history"
        " WHERE product_id = 163 ORDER BY valid_from",
    )
    friday, monday = date(2024, 6, 7), date(2024, 6, 10)
    assert history == [
        (Decimal("33.03"), friday, friday, monday),  # 36 / 1.0898; the weekend kept Friday's rate
        (Decimal("33.47"), monday, monday, None),  # 36 / 1.0756
    ]
