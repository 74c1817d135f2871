"""Asset keys of the `sales` group (`[group, layer, entity]`), named once for every module that refers to them."""

from dagster import AssetKey

GROUP = "sales"
EXTRA_GROUP = "sales_extra"  # the other endpoints: materialized only where a user selects them
RAW_SALES = AssetKey([GROUP, "raw", "sales"])
FLAT_SALES = AssetKey([GROUP, "flat", "sales"])
CLEAN_SALES = AssetKey([GROUP, "clean", "sales"])
DIFF_SALES = AssetKey([GROUP, "diff", "sale_changes"])
SALE_TABLE = AssetKey([GROUP, "tables", "sale"])
# What the `sales_history` job runs; the other endpoints' assets are not part of it.
CORE_ASSETS = (RAW_SALES, FLAT_SALES, CLEAN_SALES, DIFF_SALES, SALE_TABLE)
# The other endpoints' flattened sales (group EXTRA_GROUP).
OTHER_FLAT = {
    entity: AssetKey([GROUP, "flat", entity]) for entity in ("sale_users", "sale_commissions", "sale_price_details")
}
