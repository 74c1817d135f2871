"""Generic, domain-free building blocks: settings, storage, warehouse, HTTP, checks."""
