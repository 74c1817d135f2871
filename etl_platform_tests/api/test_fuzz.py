"""Property-based test of the whole REST API from its own OpenAPI schema (schemathesis).

Every operation of `/openapi.json` is called with generated requests, valid and invalid ones
(schemathesis' examples, coverage and fuzzing phases, positive and negative data), in process
(ASGI) on a real Postgres warehouse holding a few rows of every table. Each answer must not be
a 5xx and must conform to the schema: documented status code, content type and body; invalid
input must be refused with a 4xx. Derandomized, so that every run sends the same requests.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timezone

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from etl_platform.api import create_app
from etl_platform.defs.cve import tables as cve_tables
from etl_platform.defs.hr import tables as hr_tables
from etl_platform.lib.quarantine import quarantine
from etl_platform.lib.warehouse import engine_for

TOKEN = "fuzz-token-3c9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Generated requests per operation, on top of the schema's examples and the coverage phase's
# boundary cases; ETL_FUZZ_EXAMPLES raises it for a deeper search on a workstation.
MAX_EXAMPLES = int(os.environ.get("ETL_FUZZ_EXAMPLES") or 50)
AT = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)


def _seed(connection: sa.Connection) -> None:
    """A few rows in every table an endpoint reads, so that answers have items to check."""
    key = 2023 * 10**10 + 1
    connection.execute(cve_tables.cve.insert().values(
        cve_id="CVE-2023-0001", cve_key=key, description="About it.", published=AT,
        last_modified=AT, vuln_status="Analyzed", cisa_exploit_add=date(2024, 3, 1),
        cve_tags=json.dumps([{"sourceIdentifier": "cna@example.org", "tags": ["disputed"]}]),
    ))
    connection.execute(cve_tables.cve_metric.insert().values(
        cve_key=key, cvss_version="3.1", source="nvd@nist.gov", type="Primary", base_score=9.8,
        base_severity="CRITICAL", vector_string="CVSS:3.1/AV:N",
    ))
    connection.execute(cve_tables.cve_weakness.insert().values(cve_key=key, cwe_id="CWE-787"))
    connection.execute(cve_tables.cve_reference.insert().values(
        cve_key=key, url="https://example.org", tags=json.dumps(["Patch"])
    ))
    connection.execute(cve_tables.cve_cpe_match.insert().values(
        cve_key=key, configuration=0, configuration_operator="AND", node=0, node_operator="OR",
        criteria="cpe:2.3:a:example:widget:*:*:*:*:*:*:*:*", vulnerable=True,
    ))
    connection.execute(cve_tables.cve_ssvc.insert().values(
        cve_key=key, source="CISA-ADP", version="2.0.3", role="CISA Coordinator", assessed_at=AT,
        exploitation="active", automatable="yes", technical_impact="total",
        raw=json.dumps({"ssvcData": {"version": "2.0.3"}}),
    ))
    # Department 2 and job 96: the body example of the POST (a hire) is then a valid row.
    connection.execute(hr_tables.departments.insert(), [{"id": i, "department": f"D{i}"} for i in (1, 2)])
    connection.execute(hr_tables.jobs.insert(), [{"id": i, "job": f"Job {i}"} for i in (1, 96)])
    connection.execute(hr_tables.hired_employees.insert().values(
        id=1, name="Ana", datetime=AT, department_id=1, job_id=1
    ))
    connection.execute(hr_tables.ingest_rejections.insert().values(
        table_name="jobs", payload=json.dumps({"id": 2}), reason="job is required", source="api"
    ))
    connection.execute(hr_tables.report_hires_by_quarter.insert().values(
        year=2021, department="Sales", job="Welder", q1=1, q2=0, q3=0, q4=2
    ))
    connection.execute(hr_tables.report_departments_above_mean.insert().values(
        year=2021, id=1, department="Sales", hired=3
    ))
    connection.execute(quarantine.insert().values(
        domain="cve", asset="cve/cve", partition="2024-03-10", record_key="CVE-2024-0001",
        payload={"cveId": "CVE-2024-0001"}, reasons=["published: not a datetime"], quarantined_at=AT,
    ))


# One app for the module: it reads `ETL_WAREHOUSE_URL` when it starts, which schemathesis does
# at the first request of each operation's test (and stops it when the test ends), so every
# operation runs on the warehouse its test points the variable at. Building the schema reads
# no setting and opens no connection: collecting this module needs no database.
APP = create_app()
# Schemathesis' default answers to invalid data, and 413: the documented answer to more than
# 1000 rows (the body's `maxItems`).
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
)
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)
schema.app = APP


@pytest.fixture
def warehouse(postgres_url, monkeypatch) -> str:
    """A seeded Postgres warehouse for the app, with a token configured."""
    with TestClient(create_app(postgres_url)):  # creates the tables
        pass
    with engine_for(postgres_url).begin() as connection:
        _seed(connection)
    monkeypatch.setenv("ETL_WAREHOUSE_URL", postgres_url)
    monkeypatch.setenv("ETL_API_TOKEN", TOKEN)
    return postgres_url


def test_the_fuzzed_schema_is_the_one_the_app_serves(sqlite_url):
    with TestClient(create_app(sqlite_url)) as client:
        assert client.get("/openapi.json").json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # `warehouse` is function-scoped on purpose: one warehouse per operation, for all its requests.
    # Invalid data is drawn by filtering out mutations that still read as valid: slow at times.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much
    ],
)
def test_every_operation_answers_generated_requests_within_its_schema(case, warehouse):
    case.call_and_validate(headers=AUTH)
