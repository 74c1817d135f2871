"""The CVE read API against a real warehouse (Postgres and SQLite), through HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from etl_platform.api import create_app
from etl_platform.defs.cve.parse import cve_key
from etl_platform.defs.cve.tables import (
    cve,
    cve_cpe_match,
    cve_metric,
    cve_reference,
    cve_ssvc,
    cve_weakness,
)
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.conftest import PG_ADMIN_URL

UTC = timezone.utc


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


NVD, CNA = "nvd@nist.gov", "cna@example.org"
ADVISORY, BLOG = "https://example.org/advisory", "https://example.org/blog"
ADVISORY_TAGS = ["Patch", "Vendor Advisory"]
WIDGET, OS = "cpe:2.3:a:example:widget:*:*:*:*:*:*:*:*", "cpe:2.3:o:example:os:-:*:*:*:*:*:*:*"


def _cpe_match(key, node, criteria, vulnerable, start_including=None, end_excluding=None):
    return {
        "cve_key": key,
        "configuration": 0,
        "configuration_operator": "AND",  # the widget is vulnerable when it runs on the OS
        "node": node,
        "node_operator": "OR",
        "node_negate": False,
        "criteria": criteria,
        "match_criteria_id": f"match-{node}",
        "vulnerable": vulnerable,
        "version_start_including": start_including,
        "version_end_excluding": end_excluding,
    }


CISA_ADP = "134c704f-9b21-4f2e-91b3-4a467353bcc0"


def _ssvc(assessed_at, exploitation, automatable, technical_impact, version="2.0.3"):
    """An SSVC entry as NVD sends it (metrics.ssvcV2 / ssvcV203), and the row it is stored as."""
    entry = {
        "source": CISA_ADP,
        "type": "Secondary",
        "ssvcData": {
            "version": version,
            "role": "CISA Coordinator",
            "timestamp": assessed_at,
            "options": [
                {"Exploitation": exploitation},
                {"Automatable": automatable},
                {"Technical Impact": technical_impact},
            ],
        },
    }
    row = {
        "source": CISA_ADP,
        "version": version,
        "role": "CISA Coordinator",
        "assessed_at": _at(assessed_at),
        "exploitation": exploitation,
        "automatable": automatable,
        "technical_impact": technical_impact,
        "raw": json.dumps(entry),
    }
    return entry, row


SSVC_OLD = _ssvc("2024-03-02T14:05:11.000Z", "none", "no", "partial", version="2.0.2")
SSVC_NEW = _ssvc("2024-03-09T18:00:00+00:00", "active", "yes", "total")


def _metric(version, type_, score, severity, source=NVD):
    return {
        "cvss_version": version,
        "source": source,
        "type": type_,
        "base_score": score,
        "base_severity": severity,
        "vector_string": "AV:N/AC:L/Au:N" if version == "2.0" else f"CVSS:{version}/AV:N",
        "exploitability_score": 3.9 if version != "4.0" else None,
        "impact_score": 5.9 if version != "4.0" else None,
    }


# Newest first: 0001 and 0005 share a timestamp (then ordered by id), 0002, 0003, 0004, 2022-12345.
CVES = {
    "CVE-2023-0001": {
        "last_modified": "2024-03-10T12:00:00+00:00",
        # v3.1 beats v2; within v3.1 the Primary (CRITICAL) beats the CNA's HIGH.
        "metrics": [
            _metric("2.0", "Primary", 7.5, "HIGH"),
            _metric("3.1", "Secondary", 7.5, "HIGH", source=CNA),
            _metric("3.1", "Primary", 9.8, "CRITICAL"),
        ],
    },
    "CVE-2023-0005": {
        "last_modified": "2024-03-10T12:00:00+00:00",
        "vuln_status": "Rejected",
        "metrics": [],
    },
    "CVE-2023-0002": {
        "last_modified": "2024-03-05T08:00:00+00:00",
        # v4.0 (a CNA's, MEDIUM) beats the Primary v2 and the v3.1, both HIGH.
        "metrics": [
            _metric("2.0", "Primary", 7.8, "HIGH"),
            _metric("3.1", "Secondary", 8.1, "HIGH", source=CNA),
            _metric("4.0", "Secondary", 5.3, "MEDIUM", source=CNA),
        ],
    },
    "CVE-2023-0003": {
        "last_modified": "2024-03-01T23:30:00+00:00",
        # Same version: Primary HIGH beats a higher-scored Secondary CRITICAL.
        "metrics": [
            _metric("3.1", "Secondary", 9.1, "CRITICAL", source=CNA),
            _metric("3.1", "Primary", 7.5, "HIGH"),
        ],
    },
    "CVE-2023-0004": {"last_modified": "2024-02-20T00:00:00+00:00", "metrics": []},
    "CVE-2022-12345": {
        "last_modified": "2023-01-01T00:00:00+00:00",
        "metrics": [_metric("2.0", "Primary", 2.1, "LOW")],
    },
}
ORDER = list(CVES)


def _seed(url: str) -> None:
    with engine_for(url).begin() as connection:
        for cve_id, spec in CVES.items():
            key = cve_key(cve_id)
            rejected = spec.get("vuln_status") == "Rejected"
            connection.execute(
                cve.insert().values(
                    cve_id=cve_id,
                    cve_key=key,
                    source_identifier=CNA,
                    description="** REJECT ** Not used." if rejected else f"About {cve_id}.",
                    published=None if rejected else _at("2023-06-01T10:15:09.123+00:00"),
                    last_modified=_at(spec["last_modified"]),
                    vuln_status=spec.get("vuln_status", "Analyzed"),
                )
            )
            if spec["metrics"]:
                rows = [{"cve_key": key, **metric} for metric in spec["metrics"]]
                connection.execute(cve_metric.insert(), rows)
        key = cve_key("CVE-2023-0001")
        connection.execute(
            cve.update()
            .where(cve.c.cve_key == key)
            .values(
                cisa_exploit_add=date(2024, 3, 1),
                cisa_action_due=date(2024, 3, 22),
                cisa_required_action="Apply the vendor's update.",
                cisa_vulnerability_name="Example Remote Code Execution",
            )
        )
        connection.execute(
            cve_weakness.insert(),
            [
                {"cve_key": key, "source": NVD, "type": "Primary", "cwe_id": "CWE-787"},
                {"cve_key": key, "source": CNA, "type": "Secondary", "cwe_id": "CWE-120"},
            ],
        )
        connection.execute(
            cve_reference.insert(),
            [
                {"cve_key": key, "url": ADVISORY, "source": CNA, "tags": json.dumps(ADVISORY_TAGS)},
                {"cve_key": key, "url": BLOG, "source": CNA, "tags": None},
            ],
        )
        connection.execute(
            cve_cpe_match.insert(),
            [
                _cpe_match(key, 0, WIDGET, True, start_including="1.0", end_excluding="1.4.2"),
                _cpe_match(key, 1, OS, False),
            ],
        )
        connection.execute(cve_ssvc.insert(), [{"cve_key": key, **row} for _, row in (SSVC_OLD, SSVC_NEW)])


@pytest.fixture
def client(any_warehouse_url) -> Iterator[TestClient]:
    """The API on a fresh warehouse whose tables the app created at startup, then seeded."""
    with TestClient(create_app(any_warehouse_url)) as test_client:
        _seed(any_warehouse_url)
        yield test_client


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["cve_id"] for item in response.json()["items"]]


def test_get_one_cve_with_its_children(client):
    response = client.get("/api/v1/cves/cve-2023-0001")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cve_id"] == "CVE-2023-0001"
    assert body["description"] == "About CVE-2023-0001."
    assert body["vuln_status"] == "Analyzed"
    assert body["source_identifier"] == CNA
    assert datetime.fromisoformat(body["published"]) == _at("2023-06-01T10:15:09.123+00:00")
    assert body["published"].endswith("+00:00")
    assert body["last_modified"] == "2024-03-10T12:00:00+00:00"
    assert body["cisa_exploit_add"] == "2024-03-01"
    assert body["cisa_action_due"] == "2024-03-22"
    assert body["cisa_vulnerability_name"] == "Example Remote Code Execution"
    best = (body["cvss_version"], body["base_score"], body["base_severity"])
    assert best == ("3.1", 9.8, "CRITICAL")
    assert [(m["cvss_version"], m["type"], m["base_score"]) for m in body["metrics"]] == [
        ("3.1", "Primary", 9.8),
        ("3.1", "Secondary", 7.5),
        ("2.0", "Primary", 7.5),
    ]
    assert body["metrics"][0] == {
        "cvss_version": "3.1", "source": NVD, "type": "Primary", "base_score": 9.8,
        "base_severity": "CRITICAL", "vector_string": "CVSS:3.1/AV:N",
        "exploitability_score": 3.9, "impact_score": 5.9,
    }
    assert body["weaknesses"] == [
        {"source": "nvd@nist.gov", "type": "Primary", "cwe_id": "CWE-787"},
        {"source": "cna@example.org", "type": "Secondary", "cwe_id": "CWE-120"},
    ]
    assert body["references"] == [
        {"url": ADVISORY, "source": CNA, "tags": ["Patch", "Vendor Advisory"]},
        {"url": BLOG, "source": CNA, "tags": []},
    ]
    assert [m["criteria"] for m in body["cpe_matches"]] == [WIDGET, OS]
    widget, os_match = body["cpe_matches"]
    assert widget == {
        "configuration": 0, "configuration_operator": "AND",
        "node": 0, "node_operator": "OR", "node_negate": False,
        "criteria": WIDGET, "match_criteria_id": "match-0", "vulnerable": True,
        "version_start_including": "1.0", "version_start_excluding": None,
        "version_end_including": None, "version_end_excluding": "1.4.2",
    }
    assert (os_match["vulnerable"], os_match["version_end_excluding"]) == (False, None)


def test_get_one_cve_with_its_ssvc_assessments_newest_first(client):
    body = client.get("/api/v1/cves/CVE-2023-0001").json()

    assert body["ssvc"] == [
        {
            "source": CISA_ADP,
            "version": "2.0.3",
            "role": "CISA Coordinator",
            "assessed_at": "2024-03-09T18:00:00+00:00",
            "exploitation": "active",
            "automatable": "yes",
            "technical_impact": "total",
            "raw": SSVC_NEW[0],
        },
        {
            "source": CISA_ADP,
            "version": "2.0.2",
            "role": "CISA Coordinator",
            "assessed_at": "2024-03-02T14:05:11+00:00",
            "exploitation": "none",
            "automatable": "no",
            "technical_impact": "partial",
            "raw": SSVC_OLD[0],
        },
    ]


def test_a_cve_without_ssvc_or_configuration_operator_answers_empty_and_null(client, any_warehouse_url):
    key = cve_key("CVE-2023-0002")
    with engine_for(any_warehouse_url).begin() as connection:
        match = {**_cpe_match(key, 0, WIDGET, True), "configuration_operator": None}
        connection.execute(cve_cpe_match.insert(), [match])

    body = client.get("/api/v1/cves/CVE-2023-0002").json()

    assert body["ssvc"] == []
    assert body["cpe_matches"][0]["configuration_operator"] is None


def test_ssvc_raw_that_is_not_json_is_answered_as_text(client, any_warehouse_url):
    row = {**SSVC_NEW[1], "raw": "{truncated"}
    with engine_for(any_warehouse_url).begin() as connection:
        connection.execute(cve_ssvc.insert(), [{"cve_key": cve_key("CVE-2023-0003"), **row}])

    [assessment] = client.get("/api/v1/cves/CVE-2023-0003").json()["ssvc"]

    assert assessment["raw"] == "{truncated"


def test_unknown_cve_is_404(client):
    response = client.get("/api/v1/cves/CVE-2099-99999")

    assert response.status_code == 404
    assert response.json() == {"detail": "CVE-2099-99999 is not in the warehouse"}


@pytest.mark.parametrize(
    "bad_id",
    [
        "CVE-23-0001", "CVE-2023-001", "2023-0001", "CVE-2023-0001x", "NVD-2023-0001",
        "CVE-\uff12\uff10\uff12\uff13-0001",  # fullwidth digits: not 0-9
    ],
)
def test_malformed_cve_id_is_422(client, bad_id):
    response = client.get(f"/api/v1/cves/{bad_id}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "cve_id"]


def test_list_pages_newest_first_with_total(client):
    pages = [client.get("/api/v1/cves", params={"limit": 2, "offset": o}) for o in (0, 2, 4, 6)]

    assert [_ids(page) for page in pages] == [ORDER[0:2], ORDER[2:4], ORDER[4:6], []]
    assert [(p.json()["total"], p.json()["limit"], p.json()["offset"]) for p in pages] == [
        (6, 2, 0), (6, 2, 2), (6, 2, 4), (6, 2, 6)
    ]
    first, rejected = pages[0].json()["items"]
    assert first == {
        "cve_id": "CVE-2023-0001",
        "description": "About CVE-2023-0001.",
        "published": "2023-06-01T10:15:09.123000+00:00",
        "last_modified": "2024-03-10T12:00:00+00:00",
        "vuln_status": "Analyzed",
        "cvss_version": "3.1",
        "base_score": 9.8,
        "base_severity": "CRITICAL",
    }
    assert rejected["vuln_status"] == "Rejected"
    assert rejected["published"] is None and rejected["base_severity"] is None
    default = client.get("/api/v1/cves").json()
    assert (default["limit"], default["offset"], len(default["items"])) == (100, 0, 6)


def test_severity_filter_uses_the_best_metric(client):
    def listed(severity):
        return _ids(client.get("/api/v1/cves", params={"severity": severity}))

    assert listed("CRITICAL") == ["CVE-2023-0001"]  # not 0003: its CRITICAL is a Secondary
    assert listed("high") == ["CVE-2023-0003"]  # not 0001/0002: their HIGH metrics are not the best
    assert listed("Medium") == ["CVE-2023-0002"]  # the v4.0 beats the Primary v2
    assert listed("LOW") == ["CVE-2022-12345"]  # a v2-only CVE
    assert listed("NONE") == []
    item = client.get("/api/v1/cves", params={"severity": "medium"}).json()
    assert item["total"] == 1
    assert {k: item["items"][0][k] for k in ("cvss_version", "base_score", "base_severity")} == {
        "cvss_version": "4.0", "base_score": 5.3, "base_severity": "MEDIUM"
    }
    assert client.get("/api/v1/cves", params={"severity": "SEVERE"}).status_code == 422


def test_modified_since_filters_with_a_date_and_with_an_offset_datetime(client):
    by_date = client.get("/api/v1/cves", params={"modified_since": "2024-03-05"})
    # 2024-03-02T01:00+02:00 is 2024-03-01T23:00Z: CVE-2023-0003 (23:30Z) is in.
    by_datetime = client.get("/api/v1/cves", params={"modified_since": "2024-03-02T01:00:00+02:00"})
    at_boundary = client.get("/api/v1/cves", params={"modified_since": "2024-03-01T23:30:00Z"})
    naive_is_utc = client.get("/api/v1/cves", params={"modified_since": "2024-03-01T23:30:01"})
    with_severity = client.get(
        "/api/v1/cves", params={"modified_since": "2024-03-02", "severity": "high"}
    )

    assert _ids(by_date) == ["CVE-2023-0001", "CVE-2023-0005", "CVE-2023-0002"]
    assert by_date.json()["total"] == 3
    assert _ids(by_datetime) == ["CVE-2023-0001", "CVE-2023-0005", "CVE-2023-0002", "CVE-2023-0003"]
    assert _ids(at_boundary) == _ids(by_datetime)
    assert _ids(naive_is_utc) == ["CVE-2023-0001", "CVE-2023-0005", "CVE-2023-0002"]
    assert _ids(with_severity) == []
    assert client.get("/api/v1/cves", params={"modified_since": "last tuesday"}).status_code == 422


@pytest.mark.parametrize("params", [{"limit": 1001}, {"limit": 0}, {"offset": -1}])
def test_limit_over_1000_or_bad_paging_is_422(client, params):
    response = client.get("/api/v1/cves", params=params)

    assert response.status_code == 422
    assert client.get("/api/v1/cves", params={"limit": 1000}).status_code == 200


def test_empty_warehouse_answers_with_empty_list(any_warehouse_url):
    with TestClient(create_app(any_warehouse_url)) as empty:
        page = empty.get("/api/v1/cves").json()
        assert page == {"total": 0, "limit": 100, "offset": 0, "items": []}
        assert empty.get("/api/v1/cves", params={"severity": "HIGH"}).json()["items"] == []
        assert empty.get("/api/v1/cves/CVE-2023-0001").status_code == 404


def test_an_older_warehouse_gains_the_new_cve_column_and_table_at_startup(any_warehouse_url):
    before = sa.MetaData()  # cve_cpe_match as stored before configuration_operator, no cve_ssvc
    columns = [c for c in cve_cpe_match.columns if c.name != "configuration_operator"]
    sa.Table(cve_cpe_match.name, before, *(sa.Column(c.name, c.type, nullable=c.nullable) for c in columns))
    with engine_for(any_warehouse_url).begin() as connection:
        before.create_all(connection)

    with TestClient(create_app(any_warehouse_url)) as upgraded:
        _seed(any_warehouse_url)
        body = upgraded.get("/api/v1/cves/CVE-2023-0001").json()

    assert body["cpe_matches"][0]["configuration_operator"] == "AND"
    assert len(body["ssvc"]) == 2


def test_healthz_reports_the_warehouse_dialect(client, any_warehouse_url):
    response = client.get("/healthz")

    assert response.status_code == 200
    expected = "postgresql" if any_warehouse_url.startswith("postgresql") else "sqlite"
    assert response.json() == {"status": "ok", "warehouse": expected}


def test_healthz_is_503_as_documented_when_the_warehouse_is_gone(postgres_url):
    with TestClient(create_app(postgres_url)) as client:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            database = sa.make_url(postgres_url).database
            connection.execute(sa.text(f'DROP DATABASE "{database}" WITH (FORCE)'))
        admin.dispose()
        response = client.get("/healthz")
        documented = client.get("/openapi.json").json()["paths"]["/healthz"]["get"]["responses"]

    assert response.status_code == 503
    assert response.json()["detail"].startswith("warehouse unavailable: ")
    assert "503" in documented


def test_openapi_documents_the_read_endpoints(client):
    schema = client.get("/openapi.json").json()

    assert {"/api/v1/cves", "/api/v1/cves/{cve_id}", "/healthz"} <= set(schema["paths"])
    assert "best metric" in schema["paths"]["/api/v1/cves"]["get"]["description"]
    for model in ("Metric", "Ssvc", "CpeMatch"):
        fields = schema["components"]["schemas"][model]["properties"]
        assert all(field.get("description") for field in fields.values()), model
    assert "configuration_operator" in schema["components"]["schemas"]["CpeMatch"]["properties"]
    assert "ssvc" in schema["components"]["schemas"]["CveDetail"]["required"]
    assert client.get("/docs").status_code == 200
