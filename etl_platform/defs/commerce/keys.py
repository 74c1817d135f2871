"""Asset keys of the `commerce` group (`[group, layer, entity]`), named once for every module that
refers to them."""

from dagster import AssetKey

from etl_platform.defs.commerce import tables

GROUP = "commerce"
RAW_FX = AssetKey([GROUP, "raw", "fx_rates"])
CLEAN_FX = AssetKey([GROUP, "clean", "fx_rates"])
RAW_PRODUCTS = AssetKey([GROUP, "raw", "products"])
CLEAN_PRODUCTS = AssetKey([GROUP, "clean", "products"])
DIFF = AssetKey([GROUP, "diff", "product_changes"])
TABLES = {
    t.name: AssetKey([GROUP, "tables", t.name])
    for t in (tables.fx_rate, tables.product, tables.product_price_history)
}
