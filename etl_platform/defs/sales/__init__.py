"""The `sales` group: Hotmart sales history -> raw JSON -> flattened files -> typed layer -> `sale`."""
