"""Type-2 history over any declared table, on Postgres and SQLite."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from etl_platform.lib.scd2 import Scd2Error, apply_snapshot, spec_of
from etl_platform.lib.warehouse import engine_for

metadata = sa.MetaData()
price = sa.Table(
    "item_price",
    metadata,
    sa.Column("shop", sa.Text, primary_key=True),
    sa.Column("item_id", sa.Integer, primary_key=True),
    sa.Column("price", sa.Numeric(12, 2)),
    sa.Column("label", sa.Text),
    sa.Column("valid_from", sa.Date, primary_key=True),
    sa.Column("valid_to", sa.Date),
    info={
        "scd2": {"key": ("shop", "item_id"), "valid_from": "valid_from", "valid_to": "valid_to", "tracked": ("price",)}
    },
)
MON, TUE, WED, THU = date(2024, 6, 3), date(2024, 6, 4), date(2024, 6, 5), date(2024, 6, 6)


@pytest.fixture
def engine(any_warehouse_url):
    engine = engine_for(any_warehouse_url)
    metadata.create_all(engine)
    return engine


def snapshot(*items: tuple[int, str], label: str = "x") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "shop": ["a"] * len(items),
            "item_id": [item for item, _ in items],
            "price": [Decimal(value) for _, value in items],
            "label": [label] * len(items),
        }
    )


def apply(engine, frame: pd.DataFrame, day: date):
    with engine.begin() as connection:
        return apply_snapshot(connection, price, frame, day)


def history(engine) -> list[tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(price.c.item_id, price.c.price, price.c.valid_from, price.c.valid_to).order_by(
                price.c.item_id, price.c.valid_from
            )
        ).all()
    return [(item, str(value), start, end) for item, value, start, end in rows]


def test_the_first_snapshot_opens_one_row_per_key(engine):
    result = apply(engine, snapshot((1, "10.00"), (2, "20.50")), MON)

    assert result.opened == 2
    assert history(engine) == [(1, "10.00", MON, None), (2, "20.50", MON, None)]


def test_a_changed_value_closes_the_open_row_and_opens_a_new_one(engine):
    apply(engine, snapshot((1, "10.00"), (2, "20.50")), MON)

    result = apply(engine, snapshot((1, "12.00"), (2, "20.50")), TUE)

    assert (result.closed, result.opened, result.unchanged) == (1, 1, 1)
    assert history(engine) == [(1, "10.00", MON, TUE), (1, "12.00", TUE, None), (2, "20.50", MON, None)]


def test_an_untracked_column_changing_writes_nothing(engine):
    apply(engine, snapshot((1, "10.00"), label="old"), MON)

    result = apply(engine, snapshot((1, "10.00"), label="new"), TUE)

    assert result.written == 0
    assert history(engine) == [(1, "10.00", MON, None)]


def test_a_removed_key_has_its_open_row_closed(engine):
    apply(engine, snapshot((1, "10.00"), (2, "20.50")), MON)

    result = apply(engine, snapshot((1, "10.00")), TUE)

    assert result.closed == 1
    assert history(engine) == [(1, "10.00", MON, None), (2, "20.50", MON, TUE)]


def test_a_key_that_comes_back_opens_a_new_row(engine):
    apply(engine, snapshot((1, "10.00")), MON)
    apply(engine, snapshot(), TUE)

    result = apply(engine, snapshot((1, "10.00")), WED)

    assert result.opened == 1
    assert history(engine) == [(1, "10.00", MON, TUE), (1, "10.00", WED, None)]


def test_applying_the_same_day_again_changes_nothing(engine):
    apply(engine, snapshot((1, "10.00"), (2, "20.50")), MON)
    apply(engine, snapshot((1, "12.00")), TUE)
    before = history(engine)

    result = apply(engine, snapshot((1, "12.00")), TUE)

    assert result.written == 0
    assert history(engine) == before


def test_the_latest_day_applied_again_with_other_values_rewrites_that_day(engine):
    apply(engine, snapshot((1, "10.00"), (2, "20.50"), (3, "5.00")), MON)
    apply(engine, snapshot((1, "12.00"), (3, "5.00")), TUE)

    # 1 back to Monday's price, 2 present after all, 3 gone: as if Tuesday had said so first.
    result = apply(engine, snapshot((1, "10.00"), (2, "20.50")), TUE)

    assert (result.deleted, result.reopened, result.closed) == (1, 2, 1)
    assert history(engine) == [(1, "10.00", MON, None), (2, "20.50", MON, None), (3, "5.00", MON, TUE)]


def test_a_day_older_than_the_latest_applied_is_late_and_writes_nothing(engine):
    apply(engine, snapshot((1, "10.00")), MON)
    apply(engine, snapshot((1, "12.00")), WED)
    before = history(engine)

    result = apply(engine, snapshot((1, "99.00"), (7, "1.00")), TUE)

    assert result.late and result.applied_through == WED
    assert history(engine) == before
    assert not apply(engine, snapshot((1, "12.00")), THU).late


def test_a_table_without_a_declaration_is_refused():
    plain = sa.Table("plain", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))

    with pytest.raises(Scd2Error, match="declares no info"):
        spec_of(plain)


def test_a_snapshot_repeating_a_key_is_refused(engine):
    with pytest.raises(Scd2Error, match="more than once"):
        apply(engine, snapshot((1, "10.00"), (1, "11.00")), MON)
