"""NVD CVE API 2.0 records -> rows of the clean tables (pure functions, no I/O).

Parses what the API 2.0 schema allows, not only what samples contain: every CVSS version
(v2, v3.0, v3.1, v4.0), CVEs without metrics, weaknesses or configurations, several
descriptions, rejected CVEs, and timestamps with or without `Z` or an offset.
Odd values are kept as they come (or as null) so that the schema check can show them;
parsing itself never drops a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

# The API's metric keys; the version is read from cvssData when present.
METRIC_KEYS = {
    "cvssMetricV2": "2.0",
    "cvssMetricV30": "3.0",
    "cvssMetricV31": "3.1",
    "cvssMetricV40": "4.0",
}
CVE_ID = re.compile(r"^CVE-(\d{4})-(\d{4,10})$")
SEQUENCE_SPAN = 10**10


def cve_key(cve_id: str | None) -> int | None:
    """Integer form of a CVE id (`CVE-2023-27314` -> 20230000027314); None if malformed."""
    match = CVE_ID.match(cve_id or "")
    if not match:
        return None
    return int(match.group(1)) * SEQUENCE_SPAN + int(match.group(2))


def english(entries: Iterable[dict[str, Any]] | None) -> str | None:
    """The first English text of a list of `{lang, value}` (NVD may send several languages)."""
    for entry in entries or ():
        if str(entry.get("lang", "")).lower().startswith("en"):
            return entry.get("value")
    return None


def _json_text(value: Any) -> str | None:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode() if value else None


def cve_row(cve: dict[str, Any]) -> dict[str, Any]:
    return {
        "cve_id": cve.get("id"),
        "cve_key": cve_key(cve.get("id")),
        "source_identifier": cve.get("sourceIdentifier"),
        "description": english(cve.get("descriptions")),
        "published": cve.get("published"),
        "last_modified": cve.get("lastModified"),
        "vuln_status": cve.get("vulnStatus"),
        "cisa_exploit_add": cve.get("cisaExploitAdd"),
        "cisa_action_due": cve.get("cisaActionDue"),
        "cisa_required_action": cve.get("cisaRequiredAction"),
        "cisa_vulnerability_name": cve.get("cisaVulnerabilityName"),
        "cve_tags": _json_text(cve.get("cveTags")),
    }


def metric_rows(cve: dict[str, Any], key: int | None) -> list[dict[str, Any]]:
    rows = []
    for metric_key, entries in (cve.get("metrics") or {}).items():
        for entry in entries or ():
            data = entry.get("cvssData") or {}
            rows.append(
                {
                    "cve_key": key,
                    "cvss_version": str(data.get("version") or METRIC_KEYS.get(metric_key, metric_key)),
                    "source": entry.get("source"),
                    "type": entry.get("type"),
                    "base_score": data.get("baseScore"),
                    # CVSS v2 keeps the severity beside cvssData, v3 and v4 inside it.
                    "base_severity": data.get("baseSeverity") or entry.get("baseSeverity"),
                    "vector_string": data.get("vectorString"),
                    "exploitability_score": entry.get("exploitabilityScore"),
                    "impact_score": entry.get("impactScore"),
                }
            )
    return rows


def weakness_rows(cve: dict[str, Any], key: int | None) -> list[dict[str, Any]]:
    return [
        {"cve_key": key, "source": weakness.get("source"), "type": weakness.get("type"), "cwe_id": text.get("value")}
        for weakness in cve.get("weaknesses") or ()
        for text in weakness.get("description") or ()
    ]


def reference_rows(cve: dict[str, Any], key: int | None) -> list[dict[str, Any]]:
    return [
        {"cve_key": key, "url": ref.get("url"), "source": ref.get("source"), "tags": _json_text(ref.get("tags"))}
        for ref in cve.get("references") or ()
    ]


def cpe_match_rows(cve: dict[str, Any], key: int | None) -> list[dict[str, Any]]:
    rows = []
    for configuration_index, configuration in enumerate(cve.get("configurations") or ()):
        for node_index, node in enumerate(configuration.get("nodes") or ()):
            for match in node.get("cpeMatch") or ():
                rows.append(
                    {
                        "cve_key": key,
                        "configuration": configuration_index,
                        "node": node_index,
                        "node_operator": node.get("operator"),
                        "node_negate": bool(node.get("negate", False)),
                        "criteria": match.get("criteria"),
                        "match_criteria_id": match.get("matchCriteriaId"),
                        "vulnerable": bool(match.get("vulnerable", False)),
                        "version_start_including": match.get("versionStartIncluding"),
                        "version_start_excluding": match.get("versionStartExcluding"),
                        "version_end_including": match.get("versionEndIncluding"),
                        "version_end_excluding": match.get("versionEndExcluding"),
                    }
                )
    return rows


CHILD_PARSERS = {
    "cve_metrics": metric_rows,
    "cve_weaknesses": weakness_rows,
    "cve_references": reference_rows,
    "cve_cpe_matches": cpe_match_rows,
}


def parse_vulnerabilities(items: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of every clean table for a list of API `vulnerabilities` items."""
    tables: dict[str, list[dict[str, Any]]] = {"cves": [], **{name: [] for name in CHILD_PARSERS}}
    for item in items:
        cve = item.get("cve") or {}
        row = cve_row(cve)
        tables["cves"].append(row)
        for name, parser in CHILD_PARSERS.items():
            tables[name].extend(parser(cve, row["cve_key"]))
    return tables
