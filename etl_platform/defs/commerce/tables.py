"""Warehouse tables of the `commerce` group (DESIGN.md contract), declared once as data.

Money is `numeric(12,2)` and rates `numeric(18,6)`: Python `Decimal` all the way, never floats.
(SQLite has no decimal type: SQLAlchemy stores a float there and gives a `Decimal` back rounded
to the column's scale, which is exact for amounts of up to 15 significant digits.)
"""

import sqlalchemy as sa

from etl_platform.lib.warehouse import declare

metadata = declare(sa.MetaData())  # created by the warehouse resource on first use
MONEY = sa.Numeric(12, 2, asdecimal=True)
UTC_TIMESTAMP = sa.DateTime(timezone=True)

fx_rate = sa.Table(
    "fx_rate",
    metadata,
    sa.Column("rate_date", sa.Date, primary_key=True, comment="the day the ECB published the rate"),
    sa.Column("base", sa.Text, primary_key=True, comment="ISO 4217 code of the base currency (EUR)"),
    sa.Column("quote", sa.Text, primary_key=True, comment="ISO 4217 code of the quoted currency"),
    # Every ECB reference rate since 1999 has at most 6 decimals and 7 significant digits.
    sa.Column("rate", sa.Numeric(18, 6, asdecimal=True), nullable=False, comment="units of quote per 1 base"),
    comment="ECB euro reference rates: units of `quote` per 1 `base`, one row per publication day.",
)

product = sa.Table(
    "product",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("slug", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("category", sa.Text, nullable=False, comment="category name"),
    sa.Column("category_id", sa.Integer, nullable=False),
    sa.Column("price_usd", MONEY, nullable=False, comment="the store's price, US dollars"),
    sa.Column("price_eur", MONEY, nullable=False, comment="price_usd / rate of rate_date, half-even to the cent"),
    sa.Column("rate_date", sa.Date, nullable=False, comment="publication day of the EUR/USD rate used"),
    sa.Column("images", sa.Text, comment="JSON list of image URLs"),
    sa.Column("created_at", UTC_TIMESTAMP, comment="creationAt in the store"),
    sa.Column("updated_at", UTC_TIMESTAMP, comment="updatedAt in the store"),
    sa.Column("as_of", sa.Date, nullable=False, comment="the day whose snapshot set these values"),
    sa.Column(
        "removed_on", sa.Date, comment="the first day the product was missing from its category; null while listed"
    ),
    info={"version_column": "as_of"},
    comment="The store's products of the configured category, priced in USD and EUR, as of the latest day loaded.",
)

product_price_history = sa.Table(
    "product_price_history",
    metadata,
    sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("price_usd", MONEY, nullable=False),
    sa.Column("price_eur", MONEY, nullable=False),
    sa.Column("rate_date", sa.Date, nullable=False, comment="publication day of the EUR/USD rate used"),
    sa.Column("valid_from", sa.Date, primary_key=True, comment="first day of these prices (inclusive)"),
    sa.Column("valid_to", sa.Date, comment="first day they no longer held (exclusive); null for the current prices"),
    sa.Index("ix_product_price_history_open", "product_id", "valid_to"),
    info={"scd2": {"key": ("product_id",), "valid_from": "valid_from", "valid_to": "valid_to"}},
    comment=(
        "Every price a product has had, in USD and EUR with the rate's date "
        "(type 2: the open row has valid_to null)."
    ),
)

# What the diff compares: a product changed when one of these did.
COMPARED = (
    "title", "slug", "description", "category", "category_id",
    "price_usd", "price_eur", "rate_date", "images", "created_at", "updated_at",
)
HISTORY_COLUMNS = ("price_usd", "price_eur", "rate_date")
