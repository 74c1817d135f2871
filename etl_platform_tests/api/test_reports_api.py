"""The HR report endpoints on reports built by the migration from the challenge CSVs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from etl_platform.api import create_app
from etl_platform_tests.hr.conftest import (
    expected_departments_above_mean,
    expected_hires_by_quarter,
    land_samples,
)
from etl_platform_tests.hr.conftest import landing, migration  # noqa: F401  (fixtures)

HIRES = "/api/v1/reports/hires-by-quarter"
ABOVE = "/api/v1/reports/departments-above-mean"


@pytest.fixture
def api(migration, landing, any_warehouse_url) -> Iterator[TestClient]:
    """The API on a warehouse where the challenge files were migrated and reported."""
    land_samples(landing)
    migration(any_warehouse_url).tick_and_run()
    with TestClient(create_app(any_warehouse_url)) as client:
        yield client


def test_hires_by_quarter_of_a_year_ordered_by_department_then_job(api):
    answer = api.get(HIRES)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["year"] == 2021
    assert body["rows"] == expected_hires_by_quarter(2021)
    assert list(body["rows"][0]) == ["department", "job", "q1", "q2", "q3", "q4"]
    assert body["rows"][0]["department"] == "Accounting"
    assert api.get(HIRES, params={"year": 2022}).json() == {"year": 2022, "rows": expected_hires_by_quarter(2022)}
    assert api.get(HIRES, params={"year": 2019}).json() == {"year": 2019, "rows": []}


def test_departments_above_mean_of_a_year_ordered_by_hired_descending(api):
    answer = api.get(ABOVE)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {"year": 2021, "rows": expected_departments_above_mean(2021)}
    assert list(body["rows"][0]) == ["id", "department", "hired"]
    assert body["rows"][0] == {"id": 8, "department": "Support", "hired": 216}
    assert api.get(ABOVE, params={"year": 2022}).json() == {"year": 2022, "rows": expected_departments_above_mean(2022)}
    assert api.get(ABOVE, params={"year": 2019}).json() == {"year": 2019, "rows": []}


@pytest.mark.parametrize("path", [HIRES, ABOVE])
def test_a_year_must_be_a_year(sqlite_url, path):
    with TestClient(create_app(sqlite_url)) as client:
        assert client.get(path, params={"year": "last"}).status_code == 422
        assert client.get(path, params={"year": 99999}).status_code == 422
        assert client.get(path).json() == {"year": 2021, "rows": []}
        paths = client.get("/openapi.json").json()["paths"]

    assert paths[path]["get"]["parameters"][0]["name"] == "year"
