"""Pure functions of the `commerce` group: source bodies, rates, exact money."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from etl_platform.defs.commerce.parse import (
    ParseError,
    parse_eurofxref_history,
    parse_sdmx_csv,
    parse_sdmx_json,
    price_in_eur,
    rate_for_day,
    read_products,
    store_items,
    to_cents,
)
from etl_platform.defs.commerce.schemas import FxRateModel, ProductModel
from etl_platform.lib.typed_frames import typed_frame, typed_frame_and_failures

ECB = Path(__file__).resolve().parents[2] / "etl_platform" / "samples" / "ecb"
STORE = Path(__file__).resolve().parents[2] / "etl_platform" / "samples" / "fake_store"


def test_csvdata_observations_are_exact_decimals_of_usd_per_eur():
    rows = parse_sdmx_csv((ECB / "EXR_D.USD.EUR.SP00.A_csvdata_lastN720_2025-10-28.csv").read_bytes())

    assert len(rows) == 720
    assert rows[0] == {"rate_date": date(2023, 1, 4), "base": "EUR", "quote": "USD", "rate": Decimal("1.0599")}


@pytest.mark.parametrize("blank", ["", "NaN"])
def test_a_blank_csvdata_observation_has_no_rate(blank):
    body = f"KEY,CURRENCY,CURRENCY_DENOM,TIME_PERIOD,OBS_VALUE\r\nEXR.D.USD.EUR.SP00.A,USD,EUR,2024-12-25,{blank}\r\n"

    assert parse_sdmx_csv(body.encode())[0]["rate"] is None


def test_jsondata_gives_the_same_observations_as_csvdata():
    json_rows = parse_sdmx_json((ECB / "EXR_D.USD.EUR.SP00.A_jsondata_full_2024-06-03_2024-06-07.json").read_bytes())
    csv_rows = parse_sdmx_csv((ECB / "EXR_D.USD.EUR.SP00.A_csvdata_lastN720_2025-10-28.csv").read_bytes())

    week = [row for row in csv_rows if date(2024, 6, 3) <= row["rate_date"] <= date(2024, 6, 7)]
    assert json_rows == week


def test_the_history_file_gives_every_published_rate_of_every_currency():
    rows = parse_eurofxref_history((ECB / "eurofxref-hist_2025-05-09.csv").read_bytes())

    first_day = {row["quote"]: row["rate"] for row in rows if row["rate_date"] == date(1999, 1, 4)}
    assert first_day["USD"] == Decimal("1.1789")
    assert "CYP" in first_day and not [r for r in rows if r["quote"] == "CYP" and r["rate_date"] == date(2025, 5, 9)]
    assert {row["base"] for row in rows} == {"EUR"}


def test_a_weekend_day_takes_the_last_rate_published_before_it():
    rates = typed_frame(
        [
            {"rate_date": date(2024, 6, 6), "base": "EUR", "quote": "USD", "rate": Decimal("1.0865")},
            {"rate_date": date(2024, 6, 7), "base": "EUR", "quote": "USD", "rate": Decimal("1.0898")},
            {"rate_date": date(2024, 6, 10), "base": "EUR", "quote": "USD", "rate": Decimal("1.0756")},
        ],
        FxRateModel,
    )

    assert rate_for_day(rates, date(2024, 6, 9)) == (date(2024, 6, 7), Decimal("1.0898"))
    assert rate_for_day(rates, date(2024, 6, 10)) == (date(2024, 6, 10), Decimal("1.0756"))
    assert rate_for_day(rates, date(2024, 6, 5)) is None
    assert rate_for_day(typed_frame([], FxRateModel), date(2024, 6, 5)) is None


@pytest.mark.parametrize(
    ("amount", "cents"),
    [("0.125", "0.12"), ("0.135", "0.14"), ("2.675", "2.68"), ("20", "20.00"), ("19.994999", "19.99")],
)
def test_amounts_round_half_even_to_the_cent(amount, cents):
    assert to_cents(Decimal(amount)) == Decimal(cents)


def test_a_usd_price_converts_at_usd_per_eur_half_even_to_the_cent():
    assert price_in_eur(Decimal("20.00"), Decimal("1.0898")) == Decimal("18.35")
    assert price_in_eur(Decimal("1.00"), Decimal("1.6")) == Decimal("0.62")  # 0.625 -> even
    assert price_in_eur(Decimal("1.00"), Decimal("1.28")) == Decimal("0.78")  # 0.78125


def test_recorded_products_parse_with_exact_prices_and_category_names():
    products = read_products(store_items([(STORE / "products_categoryId10_2025-10-17.json").read_bytes()])).rows

    assert len(products) == 28
    assert {p["category"] for p in products} == {"category_B"}
    assert all(isinstance(p["price_usd"], Decimal) and p["price_usd"].as_tuple().exponent == -2 for p in products)


def test_a_decimal_price_in_json_never_passes_through_a_float():
    page = b'[{"id": 1, "title": "t", "price": 0.1000000000000000055511151231257827}]'

    assert read_products(store_items([page])).rows[0]["price_usd"] == Decimal("0.10")


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"id": 7, "title": "t", "price": "abc"}, "price 'abc' is not a number"),
        ({"id": 7, "title": "t", "price": "NaN"}, "price 'NaN' is not a finite number"),
        ({"id": 7, "title": "t"}, "no 'price'"),
        ({"title": "t", "price": 1}, "no 'id'"),
        ("a product", "a JSON str, not an object"),
    ],
)
def test_an_unreadable_product_is_reported_by_position_and_the_others_are_still_read(item, reason):
    read = read_products([{"id": 1, "title": "a", "price": 1}, item, {"id": 3, "title": "c", "price": 3}])

    assert [row["id"] for row in read.rows] == [1, 3] and read.positions == [0, 2]
    assert list(read.unreadable) == [1] and reason in read.unreadable[1][0]


def test_a_value_its_column_cannot_take_is_set_null_and_reported_by_row():
    rows = [{"id": 1, "updated_at": "2024-06-07T10:00:00Z"}, {"id": "x1", "updated_at": "yesterday"}]

    frame, failures = typed_frame_and_failures(rows, ProductModel)

    assert frame["id"].isna().tolist() == frame["updated_at"].isna().tolist() == [False, True]
    assert list(failures) == [1] and [reason.split(":")[0] for reason in failures[1]] == ["id", "updated_at"]


def test_a_page_that_is_not_a_list_is_refused():
    with pytest.raises(ParseError, match="expected a JSON list"):
        store_items([b'{"message": "Unauthorized"}'])
