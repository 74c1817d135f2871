"""Pandera model of the `sales` group's typed layer: the gate every clean frame passes.

One row per sale (`purchase_transaction`), columns named after the flattened JSON paths. The
model declares the fields Hotmart documents for `sales/history`; fields the source adds later
pass through with types read from their values (`strict=False`) and become new columns of
`sale` by schema evolution.
"""

import pandera.pandas as pa
from pandera.engines import pandas_engine
from pandera.typing import Series

from etl_platform.lib.changes import change_kinds
from etl_platform.lib.schema_types import Boolean, Int64, Text, UtcTimestamp

# Money as Python decimals (NUMERIC in the warehouse), never float.
Money = pandas_engine.Decimal(28, 8)


class SaleModel(pa.DataFrameModel):
    """One row per sale of `sales/history`, flattened (path keys joined with `_`)."""

    purchase_transaction: Series[Text] = pa.Field(
        unique=True, str_length={"min_value": 1}, description="transaction code, e.g. HP12455690122399: the key"
    )
    purchase_status: Series[Text] = pa.Field(
        nullable=True, description="APPROVED, COMPLETE, REFUNDED, ... (Hotmart spells UNDER_ANALISYS)"
    )
    purchase_order_date: Series[UtcTimestamp] = pa.Field(
        nullable=True, description="when the order was placed (UTC; epoch ms in the API)"
    )
    purchase_approved_date: Series[UtcTimestamp] = pa.Field(
        nullable=True, description="when the payment was approved (UTC)"
    )
    purchase_warranty_expire_date: Series[UtcTimestamp] = pa.Field(
        nullable=True, description="end of the refund guarantee (UTC)"
    )
    purchase_price_value: Series[Money] = pa.Field(
        nullable=True, description="price paid (integer or fractional in the API)"
    )
    purchase_price_currency_code: Series[Text] = pa.Field(nullable=True, description="currency of the price (ISO 4217)")
    purchase_hotmart_fee_total: Series[Money] = pa.Field(nullable=True, description="Hotmart's fee, total")
    purchase_hotmart_fee_fixed: Series[Money] = pa.Field(nullable=True, description="Hotmart's fee, fixed part")
    purchase_hotmart_fee_base: Series[Money] = pa.Field(nullable=True, description="base the fee percentage applies to")
    purchase_hotmart_fee_percentage: Series[Money] = pa.Field(
        nullable=True, description="fee percentage (absent from older docs)"
    )
    purchase_hotmart_fee_currency_code: Series[Text] = pa.Field(nullable=True, description="currency of the fee")
    purchase_recurrency_number: Series[Int64] = pa.Field(
        nullable=True, ge=0, description="recurrence of a subscription payment (absent otherwise)"
    )
    purchase_is_subscription: Series[Boolean] = pa.Field(nullable=True, description="a subscription sale")
    purchase_commission_as: Series[Text] = pa.Field(
        nullable=True, description="the account's role: PRODUCER, COPRODUCER or AFFILIATE"
    )
    purchase_payment_method: Series[Text] = pa.Field(
        nullable=True, description="payment method, e.g. BILLET, FINANCED_INSTALLMENT_ADYEN_ONEY_12X"
    )
    purchase_payment_type: Series[Text] = pa.Field(nullable=True, description="payment type, e.g. PIX, CREDIT_CARD")
    purchase_payment_installments_number: Series[Int64] = pa.Field(nullable=True, ge=0, description="installments")
    purchase_offer_code: Series[Text] = pa.Field(nullable=True, description="offer code")
    purchase_offer_payment_mode: Series[Text] = pa.Field(
        nullable=True, description="offer payment mode, e.g. UNIQUE_PAYMENT, INVOICE"
    )
    purchase_tracking_source: Series[Text] = pa.Field(nullable=True, description="tracking source (src)")
    purchase_tracking_source_sck: Series[Text] = pa.Field(nullable=True, description="tracking sck (free text)")
    purchase_tracking_external_code: Series[Text] = pa.Field(nullable=True, description="tracking external code")
    product_id: Series[Int64] = pa.Field(nullable=True, description="product id")
    product_name: Series[Text] = pa.Field(nullable=True, description="product name")
    buyer_ucode: Series[Text] = pa.Field(nullable=True, description="buyer's Hotmart user code")
    buyer_name: Series[Text] = pa.Field(nullable=True, description="buyer's name")
    buyer_email: Series[Text] = pa.Field(nullable=True, description="buyer's email")
    producer_ucode: Series[Text] = pa.Field(nullable=True, description="producer's Hotmart user code")
    producer_name: Series[Text] = pa.Field(nullable=True, description="producer's name")

    class Config:
        strict = False  # later source fields pass through and widen `sale`
        coerce = False
        description = "Hotmart sales, one row per transaction"


KEY = "purchase_transaction"
CHANGE_KINDS = change_kinds()


class SaleChangeModel(pa.DataFrameModel):
    """Each sale of the run against what the warehouse held before it."""

    purchase_transaction: Series[Text] = pa.Field(unique=True, description="the sale")
    change: Series[Text] = pa.Field(
        isin=CHANGE_KINDS, description="new, changed (any column loaded into `sale` differs) or unchanged"
    )
    previous_status: Series[Text] = pa.Field(nullable=True, description="status in the warehouse before the run")
    status: Series[Text] = pa.Field(nullable=True, description="status the source reports now")

    class Config:
        strict = True
        coerce = False
        description = "Changes of the run: new sales, refunds, chargebacks, corrections..."
