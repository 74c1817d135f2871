"""NVD CVE API 2.0 records -> rows of the clean tables (pure functions, no I/O).

Parses what the API 2.0 schema allows, not only what samples contain: every CVSS version
(v2, v3.0, v3.1, v4.0), CVEs without metrics, weaknesses or configurations, several
descriptions, rejected CVEs, and timestamps with or without `Z` or an offset.
Odd values are kept as they come (or as null) so that the schema check can show them;
parsing itself never drops a record. Keys the parser does not model are collected as schema
drift (`drift`), never fatal: NVD adds blocks (SSVC under `metrics`, a top-level `affected`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import simdjson

# The API's metric keys; the version is read from cvssData when present.
METRIC_KEYS = {
    "cvssMetricV2": "2.0",
    "cvssMetricV30": "3.0",
    "cvssMetricV31": "3.1",
    "cvssMetricV40": "4.0",
}
# CISA's SSVC assessments sit beside the CVSS entries under `metrics` (e.g. `ssvcV203`).
SSVC_KEY = re.compile(r"^ssvcV(\d+)$")
# SSVC decision points as NVD spells them (`technicalImpact`), in any case or spacing.
SSVC_POINTS = {"exploitation": "exploitation", "automatable": "automatable", "technicalimpact": "technical_impact"}
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
    """CVSS entries only: other blocks under `metrics` (SSVC, future ones) are not scores."""
    rows = []
    for metric_key, entries in (cve.get("metrics") or {}).items():
        if metric_key not in METRIC_KEYS:
            continue
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


def _ssvc_version(metric_key: str) -> str:
    digits = SSVC_KEY.match(metric_key).group(1)  # "203" -> "2.0.3"
    return ".".join(digits)


def _ssvc_options(options: Any) -> dict[str, str]:
    """`[{"exploitation": "active"}, ...]` (or one object) -> {column: lower-case value}."""
    pairs = options.items() if isinstance(options, dict) else (
        item for option in options or () if isinstance(option, dict) for item in option.items()
    )
    found = {}
    for name, value in pairs:
        column = SSVC_POINTS.get(re.sub(r"[\s_-]", "", str(name)).lower())
        if column and value is not None:
            found[column] = str(value).lower()
    return found


def ssvc_rows(cve: dict[str, Any], key: int | None) -> list[dict[str, Any]]:
    """One row per SSVC assessment under `metrics` (`ssvcV203`: source + ssvcData with options)."""
    rows = []
    for metric_key, entries in (cve.get("metrics") or {}).items():
        if not SSVC_KEY.match(metric_key):
            continue
        for entry in entries or ():
            data = entry.get("ssvcData") or entry  # a few producers put the options beside `source`
            rows.append(
                {
                    "cve_key": key,
                    "source": entry.get("source"),
                    "version": str(data.get("version") or _ssvc_version(metric_key)),
                    "role": data.get("role"),
                    "assessed_at": data.get("timestamp"),
                    "exploitation": None,
                    "automatable": None,
                    "technical_impact": None,
                    **_ssvc_options(data.get("options")),
                    "raw": _json_text(entry) or "{}",
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
                        "configuration_operator": configuration.get("operator"),
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
    "cve_ssvc": ssvc_rows,
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


@dataclass
class ParsedRecords:
    """Rows of every clean table, with the position of the record each row comes from."""

    tables: dict[str, list[dict[str, Any]]]
    positions: dict[str, list[int]]
    # Records the parser could not read at all: position -> reasons.
    failures: dict[int, list[str]] = field(default_factory=dict)


def parse_records(items: Iterable[Any], first_position: int = 0) -> ParsedRecords:
    """Like `parse_vulnerabilities`, record by record: one unreadable record is set aside, not fatal."""
    names = ["cves", *CHILD_PARSERS]
    parsed = ParsedRecords({name: [] for name in names}, {name: [] for name in names})
    for position, item in enumerate(items, first_position):
        try:
            cve = item.get("cve")
            if not isinstance(cve, dict):
                raise ValueError(f"the item has no 'cve' object (keys: {sorted(item)[:10]})")
            row = cve_row(cve)
            children = {name: parser(cve, row["cve_key"]) for name, parser in CHILD_PARSERS.items()}
        except (AttributeError, TypeError, ValueError) as error:
            # A record shaped unlike API 2.0 (a list where an object belongs...): its own fault only.
            parsed.failures[position] = [f"unreadable record: {type(error).__name__}: {error}"]
            continue
        for name, rows in (("cves", [row]), *children.items()):
            parsed.tables[name].extend(rows)
            parsed.positions[name].extend([position] * len(rows))
    return parsed


# Keys of API 2.0 records the parser reads, or leaves out knowingly (evaluator notes, vendor
# comments), by where they sit. Anything else is schema drift: reported, never fatal.
KNOWN_KEYS = {
    "": {"cve"},
    "cve": {
        "id", "sourceIdentifier", "published", "lastModified", "vulnStatus", "cveTags", "descriptions",
        "metrics", "weaknesses", "configurations", "references", "cisaExploitAdd", "cisaActionDue",
        "cisaRequiredAction", "cisaVulnerabilityName", "evaluatorComment", "evaluatorSolution",
        "evaluatorImpact", "vendorComments",
    },
    "cve.configurations[]": {"operator", "negate", "nodes"},
    "cve.configurations[].nodes[]": {"operator", "negate", "cpeMatch"},
    "cve.configurations[].nodes[].cpeMatch[]": {
        "vulnerable", "criteria", "matchCriteriaId", "versionStartIncluding", "versionStartExcluding",
        "versionEndIncluding", "versionEndExcluding",
    },
}


def _is_object(value: Any) -> bool:
    # Plain dicts, and simdjson's lazy objects (the raw step walks pages without building dicts).
    return isinstance(value, (dict, simdjson.Object))


def _items(value: Any) -> Iterable[Any]:
    return value if isinstance(value, (list, simdjson.Array)) else ()


def _unknown(where: str, value: Any) -> Iterable[str]:
    if _is_object(value):
        known = KNOWN_KEYS[where]
        yield from (f"{where}.{key}".lstrip(".") for key in value.keys() if key not in known)


def unmodelled_keys(item: Any) -> set[str]:
    """Paths of the keys of one `vulnerabilities` item that the parser does not model."""
    if not _is_object(item):
        return set()
    found = set(_unknown("", item))
    cve = item.get("cve")
    if not _is_object(cve):
        return found
    found.update(_unknown("cve", cve))
    metrics = cve.get("metrics")
    if _is_object(metrics):
        found.update(
            f"cve.metrics.{key}" for key in metrics.keys() if key not in METRIC_KEYS and not SSVC_KEY.match(key)
        )
    for configuration in _items(cve.get("configurations")):
        found.update(_unknown("cve.configurations[]", configuration))
        for node in _items(configuration.get("nodes") if _is_object(configuration) else None):
            found.update(_unknown("cve.configurations[].nodes[]", node))
            for match in _items(node.get("cpeMatch") if _is_object(node) else None):
                found.update(_unknown("cve.configurations[].nodes[].cpeMatch[]", match))
    return found


def schema_drift(items: Iterable[Any], seen: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Unmodelled key path -> how many records carry it and the first CVE id seen with it."""
    seen = {} if seen is None else seen
    for item in items:
        for path in unmodelled_keys(item):
            entry = seen.setdefault(path, {"records": 0, "example": None})
            entry["records"] += 1
            if entry["example"] is None:
                cve = item.get("cve")
                entry["example"] = cve.get("id") if _is_object(cve) else None
    return seen
