"""`GET /api/v1/quarantine` against a real warehouse (Postgres and SQLite), through HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from etl_platform.api import create_app
from etl_platform.defs.hr.tables import ingest_rejections
from etl_platform.lib.quarantine import quarantine
from etl_platform.lib.warehouse import engine_for

URL = "/api/v1/quarantine"
AT = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
LATER = datetime(2024, 3, 11, 6, 30, tzinfo=timezone.utc)


def _quarantined(domain, asset, record_key, replayed_at=None, partition="2024-03-10", **payload):
    return {
        "domain": domain,
        "asset": asset,
        "partition": partition,
        "record_key": record_key,
        "payload": payload or {"id": record_key},
        "reasons": [f"{asset}: broken", "second rule"],
        "run_id": f"run-{record_key}",
        "quarantined_at": AT,
        "replayed_at": replayed_at,
    }


# Inserted in this order: ids 1 to 5.
QUARANTINED = [
    _quarantined("cve", "cve/cve", "CVE-2024-0001", cveId="CVE-2024-0001", published="yesterday"),
    _quarantined("commerce", "commerce/orders", "17"),
    _quarantined("cve", "cve/cve", "CVE-2024-0002", replayed_at=LATER),
    _quarantined("hr", "hr/tables/jobs", "#3", partition=None),
    _quarantined("cve", "cve/cve", "CVE-2024-0003"),
]
# Inserted in this order: ids 1 to 3; as the CSV migration and the batch API log them.
REJECTED = [
    {"table_name": "hired_employees", "payload": json.dumps(["7", "Ana", "", "1", "2"]),
     "reason": "datetime is required", "source": "hired_employees.csv"},
    {"table_name": "departments", "payload": json.dumps({"id": 12, "department": None}),
     "reason": "department is required", "source": "api"},
    {"table_name": "jobs", "payload": json.dumps({"job": "Welder"}),
     "reason": "id is required", "source": "api"},
]


@pytest.fixture
def api(any_warehouse_url) -> Iterator[TestClient]:
    """The API on a fresh warehouse (tables created at startup), then seeded."""
    with TestClient(create_app(any_warehouse_url)) as client:
        with engine_for(any_warehouse_url).begin() as connection:
            connection.execute(quarantine.insert(), QUARANTINED)
            connection.execute(
                ingest_rejections.insert(), [{**row, "received_at": LATER} for row in REJECTED]
            )
        yield client


def _page(api, **params) -> dict:
    response = api.get(URL, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _keys(page: dict) -> list[tuple[str, int]]:
    return [(item["origin"], item["id"]) for item in page["items"]]


def test_a_quarantined_record_is_listed_with_every_field(api):
    first = _page(api, domain="cve")["items"][0]

    assert first == {
        "origin": "quarantine",
        "id": 1,
        "domain": "cve",
        "asset": "cve/cve",
        "partition": "2024-03-10",
        "record_key": "CVE-2024-0001",
        "payload": {"cveId": "CVE-2024-0001", "published": "yesterday"},
        "reasons": ["cve/cve: broken", "second rule"],
        "run_id": "run-CVE-2024-0001",
        "quarantined_at": "2024-03-10T12:00:00+00:00",
        "replayed_at": None,
    }


def test_domain_filter_lists_that_domain_by_id(api):
    page = _page(api, domain="cve")

    assert (page["total"], page["limit"], page["offset"]) == (3, 100, 0)
    assert _keys(page) == [("quarantine", 1), ("quarantine", 3), ("quarantine", 5)]
    assert page["items"][1]["replayed_at"] == "2024-03-11T06:30:00+00:00"
    assert _page(api, domain="sales") == {"total": 0, "limit": 100, "offset": 0, "items": []}


def test_open_only_leaves_out_the_replayed_records(api):
    page = _page(api, domain="cve", open_only=True)

    assert page["total"] == 2
    assert [item["record_key"] for item in page["items"]] == ["CVE-2024-0001", "CVE-2024-0003"]


def test_hr_lists_its_quarantine_rows_then_the_ingest_rejections_in_the_same_shape(api):
    page = _page(api, domain="hr")

    assert page["total"] == 4
    assert _keys(page) == [
        ("quarantine", 4), ("ingest_rejections", 1), ("ingest_rejections", 2), ("ingest_rejections", 3)
    ]
    csv_row, api_row, without_id = page["items"][1:]
    assert api_row == {
        "origin": "ingest_rejections",
        "id": 2,
        "domain": "hr",
        "asset": "hr/tables/departments",
        "partition": "api",
        "record_key": "12",
        "payload": {"id": 12, "department": None},
        "reasons": ["department is required"],
        "run_id": None,
        "quarantined_at": "2024-03-11T06:30:00+00:00",
        "replayed_at": None,
    }
    assert (csv_row["record_key"], csv_row["partition"]) == ("7", "hired_employees.csv")
    assert csv_row["payload"] == ["7", "Ana", "", "1", "2"]
    assert without_id["record_key"] == "#3"


def test_ingest_rejections_are_open_records(api):
    assert _keys(_page(api, domain="hr", open_only=True)) == _keys(_page(api, domain="hr"))


def test_without_a_domain_every_record_is_listed(api):
    page = _page(api)

    assert page["total"] == 8
    assert _keys(page) == [("quarantine", i) for i in range(1, 6)] + [("ingest_rejections", i) for i in (1, 2, 3)]
    assert _page(api, open_only=True)["total"] == 7


def test_pages_run_on_from_the_quarantine_rows_into_the_ingest_rejections(api):
    pages = [_page(api, limit=3, offset=offset) for offset in (0, 3, 6, 9)]

    assert [(p["total"], p["limit"], p["offset"], len(p["items"])) for p in pages] == [
        (8, 3, 0, 3), (8, 3, 3, 3), (8, 3, 6, 2), (8, 3, 9, 0)
    ]
    assert [key for p in pages for key in _keys(p)] == _keys(_page(api))


@pytest.mark.parametrize("params", [{"domain": "finance"}, {"domain": ""}, {"open_only": "maybe"},
                                    {"limit": 0}, {"limit": 1001}, {"offset": -1}])
def test_bad_filters_and_paging_are_422(api, params):
    assert api.get(URL, params=params).status_code == 422


def test_a_fresh_warehouse_gets_the_table_at_startup_and_answers_an_empty_list(any_warehouse_url):
    with TestClient(create_app(any_warehouse_url)) as client:
        page = client.get(URL, params={"domain": "cve"}).json()

    assert page == {"total": 0, "limit": 100, "offset": 0, "items": []}
    with engine_for(any_warehouse_url).connect() as connection:
        assert sa.inspect(connection).has_table("quarantine")


def test_openapi_documents_the_quarantine_endpoint(api):
    schema = api.get("/openapi.json").json()

    parameters = schema["paths"][URL]["get"]["parameters"]
    assert [p["name"] for p in parameters] == ["domain", "open_only", "limit", "offset"]
    assert schema["components"]["schemas"]["Domain"]["enum"] == ["cve", "commerce", "sales", "hr"]
    fields = schema["components"]["schemas"]["QuarantinedRecord"]["properties"]
    assert all(field.get("description") for field in fields.values())
