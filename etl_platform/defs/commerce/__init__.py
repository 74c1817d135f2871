"""The `commerce` group: products of a store category priced in USD and EUR (ECB rates), with price history."""
