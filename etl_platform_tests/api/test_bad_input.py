"""Issue #14, defect 5: bad input is answered with a 4xx, or a row is rejected and logged, never a
500. On Postgres and SQLite (the bigint overflow only shows on Postgres)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from etl_platform.api import create_app
from etl_platform.defs.hr.tables import departments, ingest_rejections
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.api.conftest import TOKEN
from etl_platform_tests.stored import table_rows

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
BIGINT_MAX = 2**63 - 1
LISTS = [
    "/api/v1/cves",
    "/api/v1/tables/jobs",
    "/api/v1/tables/ingest_rejections",
    "/api/v1/quarantine",
]


@pytest.fixture
def api(url) -> Iterator[TestClient]:
    """The API on a fresh warehouse; a server error fails the test as a response, not a raise."""
    with TestClient(create_app(url), raise_server_exceptions=False) as client:
        yield client


def _nested(depth: int) -> str:
    """JSON text of `depth` nested arrays (written by hand: `json.dumps` itself would recurse)."""
    return "[" * depth + "]" * depth


def _post_departments(api: TestClient, rows_json: str):
    return api.post("/api/v1/tables/departments/rows", content=f'{{"rows": [{rows_json}]}}', headers=AUTH)


# --- offset -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", LISTS)
def test_offset_above_the_largest_bigint_is_422(api, path):
    response = api.get(path, params={"offset": BIGINT_MAX + 1})

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "offset"]


@pytest.mark.parametrize("path", LISTS)
def test_offset_at_the_largest_bigint_is_an_empty_page(api, path):
    response = api.get(path, params={"offset": BIGINT_MAX})

    assert response.status_code == 200, response.text
    assert (response.json()["offset"], response.json()["items"]) == (BIGINT_MAX, [])


def test_openapi_documents_the_bounds_of_every_paging_parameter(api):
    paths = api.get("/openapi.json").json()["paths"]

    bounds = {
        (path, parameter["name"]): (parameter["schema"]["minimum"], parameter["schema"]["maximum"])
        for path, item in paths.items()
        for parameter in item.get("get", {}).get("parameters", [])
        if parameter["name"] in ("limit", "offset")
    }
    assert bounds == {
        (path, name): (1, 1000) if name == "limit" else (0, BIGINT_MAX)
        for path in ("/api/v1/cves", "/api/v1/tables/{table}", "/api/v1/quarantine")
        for name in ("limit", "offset")
    }


# --- modified_since -----------------------------------------------------------------------

@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_modified_since_outside_utc_years_1_to_9999_is_422(api, since):
    response = api.get("/api/v1/cves", params={"modified_since": since})

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "modified_since"]
    assert "outside years 1 to 9999" in error["msg"]


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59+14:00", "0001-01-01"])
def test_modified_since_at_the_ends_of_utc_time_is_answered(api, since):
    response = api.get("/api/v1/cves", params={"modified_since": since})

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


# --- deeply nested rows ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "row",
    [
        f'{{"id": 1, "department": {_nested(1000)}}}',
        f'{{"id": {_nested(1000)}, "department": "Sales"}}',
        f'{{"id": 1, "department": "Sales", "extra": {{"a": {_nested(1000)}}}}}',
    ],
    ids=["text-column", "integer-column", "unknown-field"],
)
def test_row_nested_1000_levels_deep_is_rejected_and_logged_and_the_rest_inserted(api, url, row):
    response = _post_departments(api, f'{row}, {{"id": 2, "department": "Sales"}}')

    assert response.status_code == 200, response.text
    reason = "row nested deeper than 32 levels"
    assert response.json() == {"accepted": 1, "rejected": 1, "errors": [{"index": 0, "reason": reason}]}
    with engine_for(url).connect() as connection:
        assert connection.execute(sa.select(departments.c.id)).scalars().all() == [2]
    [logged] = table_rows(url, ingest_rejections)
    assert (logged["table_name"], logged["reason"], logged["source"]) == ("departments", reason, "api")
    assert '"..."' in logged["payload"]  # clipped at 32 levels: what follows was not kept


def test_a_nested_row_is_logged_with_what_lies_below_32_levels_cut(api, url):
    _post_departments(api, f'{{"id": 1, "department": {_nested(40)}}}')

    payload = json.loads(table_rows(url, ingest_rejections)[0]["payload"])
    expected: object = "..."
    for _ in range(31):  # the row is level 1, its value's arrays levels 2 to 32
        expected = [expected]
    assert payload == {"id": 1, "department": expected}


def test_a_row_32_levels_deep_is_judged_by_the_table_rules_33_is_too_deep(api):
    answers = [_post_departments(api, f'{{"id": 1, "department": {_nested(depth)}}}') for depth in (31, 32)]

    assert [a.json()["errors"][0]["reason"] for a in answers] == [
        "department must be text, got list",
        "row nested deeper than 32 levels",
    ]


def test_a_logged_nested_row_reads_back_through_the_api(api):
    _post_departments(api, f'{{"id": 1, "department": {_nested(1000)}}}')

    log = api.get("/api/v1/tables/ingest_rejections")
    quarantined = api.get("/api/v1/quarantine", params={"domain": "hr"})

    assert log.status_code == 200 and log.json()["total"] == 1
    assert quarantined.status_code == 200, quarantined.text
    [item] = quarantined.json()["items"]
    assert (item["record_key"], item["reasons"]) == ("1", ["row nested deeper than 32 levels"])


def test_a_body_nested_deeper_than_the_json_parser_allows_is_422(api, url):
    response = _post_departments(api, f'{{"id": 1, "department": {_nested(5000)}}}')

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert table_rows(url, ingest_rejections) == []
