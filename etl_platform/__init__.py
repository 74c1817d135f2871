"""etl-platform: typed, checked pipelines from APIs and files into a warehouse, on Dagster."""
