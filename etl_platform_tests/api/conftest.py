"""The API's warehouse, with its bearer token configured."""

from __future__ import annotations

import pytest

TOKEN = "test-token-8f2c1e"


@pytest.fixture
def url(any_warehouse_url, monkeypatch) -> str:
    """A fresh warehouse (Postgres, then SQLite) for the API, `ETL_API_TOKEN` set to `TOKEN`."""
    monkeypatch.setenv("ETL_API_TOKEN", TOKEN)
    return any_warehouse_url
