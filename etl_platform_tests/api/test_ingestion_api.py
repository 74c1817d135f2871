"""The batch ingestion API of the HR tables against a real warehouse (Postgres and SQLite).

Through HTTP: FastAPI's TestClient, and a real uvicorn server on loopback for the
concurrent clients. The real rows are the challenge CSVs shipped in `samples/hr_challenge/`.
"""

from __future__ import annotations

import csv
import json
import random
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from etl_platform.api import create_app
from etl_platform.defs.hr.tables import departments, hired_employees, ingest_rejections, jobs
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.api.conftest import TOKEN
from etl_platform_tests.stored import count, table_rows

SAMPLES = Path(__file__).resolve().parents[2] / "etl_platform" / "samples" / "hr_challenge"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HIRED = "hired_employees"


def _url(table: str) -> str:
    return f"/api/v1/tables/{table}/rows"


def _post(client, table: str, rows: list, headers: dict = AUTH):
    return client.post(_url(table), json={"rows": rows}, headers=headers)


def _csv_records(table: sa.Table) -> list[dict]:
    """The CSV's positional rows as objects; empty fields sent as null."""
    columns = [c.name for c in table.columns]
    with open(SAMPLES / f"{table.name}.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    return [{c: (v if v != "" else None) for c, v in zip(columns, row)} for row in rows]


def _hire(row_id: int, department_id: int = 1, job_id: int = 1, **changes) -> dict:
    row = {
        "id": row_id,
        "name": f"Employee {row_id}",
        "datetime": "2021-07-01T09:30:00Z",
        "department_id": department_id,
        "job_id": job_id,
    }
    return {**row, **changes}


@pytest.fixture
def api(url) -> Iterator[TestClient]:
    """The API on a fresh warehouse (tables created at startup), with a token configured."""
    with TestClient(create_app(url)) as client:
        yield client


@pytest.fixture
def staffed(api) -> TestClient:
    """Departments and jobs of the challenge CSVs loaded."""
    for table in (departments, jobs):
        response = _post(api, table.name, _csv_records(table))
        assert response.status_code == 200, response.text
    return api


def test_challenge_csvs_load_through_the_api(api, url):
    loaded = {t.name: _post(api, t.name, _csv_records(t)) for t in (departments, jobs)}
    hires = _csv_records(hired_employees)
    batches = [hires[start : start + 1000] for start in range(0, len(hires), 1000)]
    hired = [_post(api, HIRED, batch) for batch in batches]

    assert all(r.status_code == 200 for r in [*loaded.values(), *hired])
    assert loaded["departments"].json() == {"accepted": 12, "rejected": 0, "errors": []}
    assert loaded["jobs"].json() == {"accepted": 183, "rejected": 0, "errors": []}
    assert [len(batch) for batch in batches] == [1000, 999]
    assert sum(r.json()["accepted"] for r in hired) == 1929
    assert sum(r.json()["rejected"] for r in hired) == 70
    errors = [
        (1000 * n + e["index"], e["reason"])
        for n, response in enumerate(hired)
        for e in response.json()["errors"]
    ]
    assert errors[0] == (1, "job_id is required")  # id 2, Ty Hofer, no job
    assert all(reason.endswith(" is required") for _, reason in errors)
    incomplete = {i for i, row in enumerate(hires) if None in row.values()}
    assert {index for index, _ in errors} == incomplete
    counts = [count(url, table.name) for table in (departments, jobs, hired_employees)]
    assert counts == [12, 183, 1929]
    logged = table_rows(url, ingest_rejections)
    assert len(logged) == 70
    assert {(r["table_name"], r["source"]) for r in logged} == {(HIRED, "api")}
    assert [r["reason"] for r in logged] == [reason for _, reason in errors]


def test_rejected_rows_are_logged_with_the_payload_as_received(staffed, url):
    row = {"id": "7", "name": " Ana ", "datetime": "2021-02-30T10:00"}
    row.update(department_id=1, job_id=1)

    response = _post(staffed, HIRED, [row])

    reason = "datetime must be an ISO-8601 datetime, got '2021-02-30T10:00'"
    assert response.json()["errors"] == [{"index": 0, "reason": reason}]
    [logged] = table_rows(url, ingest_rejections)
    assert json.loads(logged["payload"]) == row
    assert (logged["table_name"], logged["reason"], logged["source"]) == (HIRED, reason, "api")


def test_1000_rows_are_accepted_in_one_batch(staffed, url):
    rows = [_hire(i, department_id=1 + i % 12, job_id=1 + i % 183) for i in range(1, 1001)]

    response = _post(staffed, HIRED, rows)

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1000, "rejected": 0, "errors": []}
    assert count(url, hired_employees.name) == 1000


def test_1001_rows_is_413_and_nothing_written(staffed, url):
    response = _post(staffed, HIRED, [_hire(i) for i in range(1, 1002)])

    assert response.status_code == 413
    assert count(url, hired_employees.name) == 0
    assert table_rows(url, ingest_rejections) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong", "longer", "basic-scheme", "no-scheme", "empty"],
)
def test_missing_or_wrong_token_is_401_and_nothing_written(api, url, headers):
    response = _post(api, "departments", [{"id": 1, "department": "Sales"}], headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text
    assert count(url, departments.name) == 0


def test_token_is_checked_before_the_table_and_the_body(api):
    assert api.post(_url("no_such_table"), content=b"{not json").status_code == 401
    assert api.post(_url("departments"), content=b"{not json").status_code == 401
    assert api.post(_url("departments"), json={"rows": [{}] * 1001}).status_code == 401


def test_unset_api_token_refuses_every_write(url, monkeypatch):
    monkeypatch.delenv("ETL_API_TOKEN")
    with TestClient(create_app(url)) as client:
        row = [{"id": 1, "department": "Sales"}]
        answers = [
            _post(client, "departments", row, headers=headers)
            for headers in ({}, AUTH, {"Authorization": "Bearer "})
        ]

    assert [r.status_code for r in answers] == [401, 401, 401]
    assert count(url, departments.name) == 0


def test_unknown_table_is_404(api):
    row = [{"id": 1}]

    assert _post(api, "employees", row).status_code == 404
    assert _post(api, "ingest_rejections", row).status_code == 404
    assert _post(api, "report_hires_by_quarter", row).status_code == 404
    assert api.get("/api/v1/tables/employees").status_code == 404
    detail = _post(api, "cve", row).json()["detail"]
    assert "departments, jobs, hired_employees" in detail


@pytest.mark.parametrize(
    "body",
    [
        b'{"rows": [{"id": 1, "department": "Sales"}',
        b"",
        b"not json",
        b'{"data": [{"id": 1, "department": "Sales"}]}',
        b'{"rows": {"id": 1, "department": "Sales"}}',
        b'{"rows": []}',
        b'{"rows": [{"id": 1, "department": "Sales"}, [2, "Jobs"]]}',
        b'{"rows": [null]}',
        b'[{"id": 1, "department": "Sales"}]',
    ],
    ids=["truncated", "empty", "not-json", "rows-missing", "rows-not-list", "zero-rows",
         "row-not-object", "null-row", "bare-list"],
)
def test_malformed_body_is_422_and_nothing_written(api, url, body):
    headers = {**AUTH, "Content-Type": "application/json"}

    response = api.post(_url("departments"), content=body, headers=headers)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert count(url, departments.name) == 0
    assert table_rows(url, ingest_rejections) == []


def test_duplicate_id_is_rejected_and_logged(staffed, url):
    first = _post(staffed, HIRED, [_hire(1), _hire(2)])
    again = _post(staffed, HIRED, [_hire(3), _hire(2, name="Someone Else"), _hire(3, name="Twice")])

    assert first.json() == {"accepted": 2, "rejected": 0, "errors": []}
    assert again.json() == {
        "accepted": 1,
        "rejected": 2,
        "errors": [
            {"index": 1, "reason": "duplicate id 2"},
            {"index": 2, "reason": "duplicate id 3"},
        ],
    }
    with engine_for(url).connect() as connection:
        query = sa.select(hired_employees.c.id, hired_employees.c.name)
        names = dict(connection.execute(query).all())
    assert names == {1: "Employee 1", 2: "Employee 2", 3: "Employee 3"}  # never updated
    assert [(r["reason"], r["source"]) for r in table_rows(url, ingest_rejections)] == [
        ("duplicate id 2", "api"), ("duplicate id 3", "api")
    ]


def test_missing_referenced_id_is_rejected(staffed, url):
    rows = [_hire(1, department_id=13), _hire(2, job_id="184"), _hire(3, 12, 183)]

    response = _post(staffed, HIRED, rows)

    assert response.json() == {
        "accepted": 1,
        "rejected": 2,
        "errors": [
            {"index": 0, "reason": "department_id 13 does not exist in departments"},
            {"index": 1, "reason": "job_id 184 does not exist in jobs"},
        ],
    }
    assert count(url, hired_employees.name) == 1
    assert len(table_rows(url, ingest_rejections)) == 2


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (_hire(1, department_id=2**31), "department_id 2147483648 is out of range"),
        (_hire(2**31), "id 2147483648 is out of range"),
        (_hire(1, name="Ana\x00"), "name must not contain a NUL character"),
        (
            _hire(1, datetime="1500-01-01T00:00:00Z"),
            "datetime '1500-01-01T00:00:00Z' is out of range (years 1678 to 2261)",
        ),
        (
            _hire(1, datetime="0001-01-01T00:00:00+01:00"),
            "datetime must be an ISO-8601 datetime, got '0001-01-01T00:00:00+01:00'",
        ),
        (_hire(1, job_id="\u00b2"), "job_id must be an integer, got '\u00b2'"),
        ({**_hire(1), "x\x00": 1}, "unknown field(s): x\\x00"),
    ],
    ids=["reference-over-int32", "id-over-int32", "nul-in-text", "year-1500", "year-0",
         "superscript-digit", "nul-in-key"],
)
def test_values_the_warehouse_cannot_hold_are_rejected_not_failed(staffed, url, row, reason):
    response = _post(staffed, HIRED, [row, _hire(2)])

    assert response.status_code == 200, response.text
    errors = [{"index": 0, "reason": reason}]
    assert response.json() == {"accepted": 1, "rejected": 1, "errors": errors}
    assert [r["reason"] for r in table_rows(url, ingest_rejections)] == [reason]


def test_rows_and_rejections_commit_together_or_not_at_all(url, monkeypatch):
    def failing_log(*args, **kwargs):
        raise RuntimeError("rejection log unavailable")

    monkeypatch.setattr("etl_platform.api.tables.log_rejections", failing_log)
    with TestClient(create_app(url), raise_server_exceptions=False) as client:
        response = _post(client, "departments", [{"id": 1, "department": "Sales"}, {"id": 2}])

    assert response.status_code == 500
    assert count(url, departments.name) == 0


def test_datetimes_are_stored_and_read_in_utc(staffed):
    rows = [
        _hire(1, datetime="2021-03-01T23:30:00+02:00"),
        _hire(2, datetime="2021-03-01T12:00:00"),
        _hire(3, datetime="2021-03-01T12:00:00.250Z"),
    ]
    _post(staffed, HIRED, rows)

    items = staffed.get(f"/api/v1/tables/{HIRED}").json()["items"]

    assert [item["datetime"] for item in items] == [
        "2021-03-01T21:30:00+00:00",
        "2021-03-01T12:00:00+00:00",
        "2021-03-01T12:00:00.250000+00:00",
    ]


def test_get_pages_a_table_ordered_by_id(staffed):
    def page(table, **params):
        return staffed.get(f"/api/v1/tables/{table}", params=params)

    pages = [page("departments", limit=5, offset=offset).json() for offset in (0, 5, 10, 15)]

    assert [(p["total"], p["limit"], p["offset"], len(p["items"])) for p in pages] == [
        (12, 5, 0, 5), (12, 5, 5, 5), (12, 5, 10, 2), (12, 5, 15, 0)
    ]
    assert [item["id"] for p in pages for item in p["items"]] == list(range(1, 13))
    assert pages[0]["items"][0] == {"id": 1, "department": "Product Management"}
    default = page("jobs").json()
    assert (default["total"], default["limit"], default["offset"]) == (183, 100, 0)
    assert len(default["items"]) == 100
    assert page("jobs", limit=1001).status_code == 422
    assert page("jobs", offset=-1).status_code == 422


def test_get_reads_the_rejection_log(staffed):
    _post(staffed, HIRED, [_hire(1, job_id=None)])

    page = staffed.get("/api/v1/tables/ingest_rejections").json()

    assert page["total"] == 1
    [item] = page["items"]
    assert (item["table_name"], item["reason"], item["source"]) == (
        HIRED, "job_id is required", "api"
    )
    assert json.loads(item["payload"]) == _hire(1, job_id=None)
    assert item["received_at"].endswith("+00:00")


def test_openapi_documents_the_ingestion_endpoints(api):
    schema = api.get("/openapi.json").json()

    post = schema["paths"]["/api/v1/tables/{table}/rows"]["post"]
    assert {"401", "404", "413", "422"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["rows"]["maxItems"] == 1000
    assert post["security"] == [{"ETL_API_TOKEN": []}]
    assert "/api/v1/tables/{table}" in schema["paths"]


# --- concurrency: real uvicorn on loopback, 8 clients -----------------------------------

CLIENTS = 8


class _Server(uvicorn.Server):
    """A uvicorn server that says when its startup is over, listening or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_over = threading.Event()

    async def startup(self, sockets=None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_over.set()


@pytest.fixture
def live_api(url) -> Iterator[str]:
    """The API served by uvicorn on a loopback port (a thread of this process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="warning")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.startup_over.wait(timeout=30) and server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _client_batches(client: int, rng: random.Random) -> list[list[dict]]:
    """Client c posts: ids 1..800 split between clients (no overlap); ids 801..1000, like every
    client; 100 ids from 1001 + 50c, half of them shared with each neighbour. Shuffled."""
    own = list(range(1 + 100 * client, 101 + 100 * client))
    shared = list(range(1001 + 50 * client, 1101 + 50 * client))
    batches = [own[:50], own[50:], list(range(801, 1001)), shared]
    rng.shuffle(batches)
    for batch in batches:
        rng.shuffle(batch)
    return [
        [_hire(i, 1 + i % 12, 1 + i % 183, name=f"Client {client}") for i in batch]
        for batch in batches
    ]


def test_concurrent_clients_store_every_id_once(staffed, live_api, url):
    rng = random.Random(5)
    plans = [_client_batches(client, rng) for client in range(CLIENTS)]
    posted = Counter(row["id"] for plan in plans for batch in plan for row in batch)
    start = threading.Barrier(CLIENTS)

    def run(plan: list[list[dict]]) -> list[dict]:
        with httpx.Client(base_url=live_api, headers=AUTH, timeout=120) as client:
            start.wait()
            answers = [client.post(_url(HIRED), json={"rows": batch}) for batch in plan]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        return [a.json() for a in answers]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [answer for result in pool.map(run, plans) for answer in result]

    assert len(posted) == 1450 and sum(posted.values()) == 3200
    with engine_for(url).connect() as connection:
        stored = connection.execute(sa.select(hired_employees.c.id)).scalars().all()
    assert sorted(stored) == sorted(posted)  # every id, once
    assert sum(a["accepted"] for a in answers) == 1450
    assert sum(a["rejected"] for a in answers) == 3200 - 1450
    reasons = Counter(e["reason"] for a in answers for e in a["errors"])
    assert reasons == Counter({f"duplicate id {i}": n - 1 for i, n in posted.items() if n > 1})
    assert Counter(r["reason"] for r in table_rows(url, ingest_rejections)) == reasons
