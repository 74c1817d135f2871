"""Parsing every variant the NVD API 2.0 schema allows, not only what the samples contain."""

from __future__ import annotations

import pandas as pd
import pytest

from etl_platform.defs.cve.parse import cve_key, parse_vulnerabilities
from etl_platform.defs.cve.schemas import CLEAN_MODELS
from etl_platform.devservers.nvd import sample_records
from etl_platform.lib.typed_frames import TypingError, typed_frame


def item(**cve) -> dict:
    return {"cve": {"id": "CVE-2024-12345", "lastModified": "2024-05-01T10:00:00.000", **cve}}


def frames(*items: dict) -> dict[str, pd.DataFrame]:
    return {name: typed_frame(rows, CLEAN_MODELS[name]) for name, rows in parse_vulnerabilities(items).items()}


def valid(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    return CLEAN_MODELS[name].validate(frame, lazy=True)


@pytest.mark.parametrize(
    ("cve_id", "key"),
    [("CVE-2023-27314", 20230000027314), ("CVE-1999-0001", 19990000000001), ("CVE-2021-1234567", 20210001234567)],
)
def test_cve_key_is_year_and_number_as_one_integer(cve_id, key):
    assert cve_key(cve_id) == key


@pytest.mark.parametrize("cve_id", ["", None, "CVE-23-1", "GHSA-xxxx", "CVE-2023-12"])
def test_cve_key_of_a_malformed_id_is_none(cve_id):
    assert cve_key(cve_id) is None


@pytest.mark.parametrize(
    "stamp", ["2024-05-01T10:00:00.000", "2024-05-01T10:00:00.000Z", "2024-05-01T12:00:00.000+02:00", "2024-05-01T10:00:00"]
)
def test_timestamps_with_or_without_zone_are_the_same_utc_instant(stamp):
    cves = frames(item(lastModified=stamp, published=stamp))["cves"]

    assert cves.loc[0, "last_modified"] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert cves.loc[0, "published"] == pd.Timestamp("2024-05-01T10:00:00Z")


def test_a_timestamp_that_is_not_iso_8601_fails_with_the_column_named():
    with pytest.raises(TypingError, match="last_modified"):
        frames(item(lastModified="yesterday"))


def test_every_cvss_version_becomes_metric_rows():
    metrics = {
        "cvssMetricV2": [
            {"source": "nvd@nist.gov", "type": "Primary", "baseSeverity": "HIGH", "exploitabilityScore": 10.0,
             "impactScore": 6.4, "cvssData": {"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P", "baseScore": 7.5}}
        ],
        "cvssMetricV30": [
            {"source": "nvd@nist.gov", "type": "Primary",
             "cvssData": {"version": "3.0", "vectorString": "CVSS:3.0/AV:N", "baseScore": 9.8, "baseSeverity": "CRITICAL"}}
        ],
        "cvssMetricV31": [
            {"source": "cna@example.org", "type": "Secondary",
             "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:L", "baseScore": 5.5, "baseSeverity": "MEDIUM"}}
        ],
        "cvssMetricV40": [
            {"source": "cna@example.org", "type": "Secondary",
             "cvssData": {"version": "4.0", "vectorString": "CVSS:4.0/AV:N/AC:L", "baseScore": 0.0, "baseSeverity": "NONE"}}
        ],
    }
    rows = valid("cve_metrics", frames(item(metrics=metrics))["cve_metrics"])

    assert list(zip(rows.cvss_version, rows.base_score, rows.base_severity)) == [
        ("2.0", 7.5, "HIGH"), ("3.0", 9.8, "CRITICAL"), ("3.1", 5.5, "MEDIUM"), ("4.0", 0.0, "NONE")
    ]
    assert rows.loc[0, "exploitability_score"] == 10.0
    assert pd.isna(rows.loc[3, "impact_score"])


def test_a_cve_without_metrics_weaknesses_or_configurations_is_kept_alone():
    parsed = frames(item(descriptions=[{"lang": "en", "value": "x"}]))

    assert len(valid("cves", parsed["cves"])) == 1
    assert all(parsed[name].empty for name in ("cve_metrics", "cve_weaknesses", "cve_references", "cve_cpe_matches"))


def test_the_english_description_is_chosen_among_several():
    descriptions = [{"lang": "es", "value": "hola"}, {"lang": "en", "value": "hello"}, {"lang": "en", "value": "again"}]

    assert frames(item(descriptions=descriptions))["cves"].loc[0, "description"] == "hello"


def test_a_rejected_cve_loads_with_its_status_and_no_metrics():
    rejected = item(
        vulnStatus="Rejected",
        descriptions=[{"lang": "en", "value": "Rejected reason: This candidate was withdrawn."}],
        metrics={},
        references=[],
    )
    cves = valid("cves", frames(rejected)["cves"])

    assert cves.loc[0, "vuln_status"] == "Rejected"


def test_cisa_kev_fields_and_tags_are_kept():
    kev = item(
        cisaExploitAdd="2021-11-03",
        cisaActionDue="2022-05-03",
        cisaRequiredAction="Apply updates per vendor instructions.",
        cisaVulnerabilityName="Example RCE",
        cveTags=[{"sourceIdentifier": "cna@example.org", "tags": ["disputed"]}],
    )
    cves = valid("cves", frames(kev)["cves"])

    assert cves.loc[0, "cisa_exploit_add"] == pd.Timestamp("2021-11-03")
    assert "disputed" in cves.loc[0, "cve_tags"]


def test_cpe_matches_keep_configuration_and_node_positions():
    configurations = [
        {"operator": "AND", "nodes": [
            {"operator": "OR", "negate": False, "cpeMatch": [
                {"vulnerable": True, "criteria": "cpe:2.3:a:v:p:*:*:*:*:*:*:*:*", "versionEndExcluding": "2.0",
                 "matchCriteriaId": "A"}]},
            {"operator": "OR", "negate": True, "cpeMatch": [
                {"vulnerable": False, "criteria": "cpe:2.3:o:v:os:-:*:*:*:*:*:*:*", "matchCriteriaId": "B"}]},
        ]}
    ]
    matches = valid("cve_cpe_matches", frames(item(configurations=configurations))["cve_cpe_matches"])

    assert list(zip(matches.configuration, matches.node, matches.node_negate, matches.vulnerable)) == [
        (0, 0, False, True), (0, 1, True, False)
    ]
    assert matches.loc[0, "version_end_excluding"] == "2.0"


def test_the_shipped_real_page_passes_every_clean_schema():
    parsed = frames(*sample_records())

    for name, frame in parsed.items():
        valid(name, frame)
    assert len(parsed["cves"]) == 38


def test_a_score_out_of_range_is_caught_by_the_schema_not_dropped_by_parsing():
    metrics = {"cvssMetricV31": [{"source": "s", "type": "Primary", "cvssData": {"version": "3.1", "baseScore": 11.0}}]}
    rows = frames(item(metrics=metrics))["cve_metrics"]

    assert len(rows) == 1
    with pytest.raises(Exception, match="less_than_or_equal_to"):
        valid("cve_metrics", rows)
