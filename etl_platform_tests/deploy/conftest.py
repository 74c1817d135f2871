"""The deployed profile's services: Dagster's own Postgres database; the domains' stand-ins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from etl_platform_tests.commerce.conftest import store  # noqa: F401  (fixtures used here too)
from etl_platform_tests.conftest import new_database
from etl_platform_tests.sales.conftest import hotmart, sales_env  # noqa: F401


@pytest.fixture
def dagster_pg_url() -> Iterator[str]:
    """A new database for Dagster's storage, as dagster-postgres needs it: the psycopg2 driver."""
    with new_database("etl_dagster") as url:
        yield url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
