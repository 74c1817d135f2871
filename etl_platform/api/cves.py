"""Read endpoints of the `cve` group: one CVE with its children, and a filtered paged list.

"Best metric" of a CVE (used for the severity filter and the summary scores): among its
metrics, the highest CVSS version present (4.0 > 3.1 > 3.0 > 2.0), within that version the
`Primary` entry (NVD's own score) before `Secondary` ones (CNAs), then the highest score,
then the source name, so the choice is always the same.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, BeforeValidator, Field

from etl_platform.api import paging
from etl_platform.api.deps import Connection
from etl_platform.api.values import UtcDateTime, as_utc, parsed_json
from etl_platform.defs.cve.tables import (
    cve,
    cve_cpe_match,
    cve_metric,
    cve_reference,
    cve_ssvc,
    cve_weakness,
)

router = APIRouter(tags=["cve"])

# [0-9], not \d: the validator's \d matches the digits of any script, JSON Schema's only 0-9.
CVE_ID_PATTERN = r"^[Cc][Vv][Ee]-[0-9]{4}-[0-9]{4,}$"
BEST_METRIC_RULE = (
    "The *best metric* of a CVE is the metric of the highest CVSS version present "
    "(4.0 > 3.1 > 3.0 > 2.0); within that version the `Primary` entry (NVD) wins over "
    "`Secondary` ones (CNAs), then the higher base score."
)


# --- serialisation ---------------------------------------------------------------------

def _json_list(text: Any) -> list[Any]:
    """A JSON list stored as text (null -> []); text that is not JSON is kept as one entry."""
    if text is None or isinstance(text, list):
        return text or []
    try:
        value = json.loads(text)
    except ValueError:
        return [text]
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


JsonList = Annotated[list[Any], BeforeValidator(_json_list)]


# --- response models -------------------------------------------------------------------

class Metric(BaseModel):
    cvss_version: str = Field(description="CVSS version: `2.0`, `3.0`, `3.1` or `4.0`")
    source: str | None = Field(None, description="who scored it: `nvd@nist.gov` or a CNA")
    type: str | None = Field(
        None, description="`Primary` (NVD's own score) or `Secondary` (a CNA's)"
    )
    base_score: float | None = Field(None, description="CVSS base score, 0.0 to 10.0")
    base_severity: str | None = Field(None, description="NONE, LOW, MEDIUM, HIGH or CRITICAL")
    vector_string: str | None = Field(
        None, description="CVSS vector, e.g. `CVSS:3.1/AV:N/AC:L/...`"
    )
    exploitability_score: float | None = Field(
        None, description="exploitability sub-score (v2, v3)"
    )
    impact_score: float | None = Field(None, description="impact sub-score (v2, v3)")


class Weakness(BaseModel):
    source: str | None = Field(None, description="who assigned the weakness")
    type: str | None = Field(None, description="`Primary` or `Secondary`")
    cwe_id: str = Field(description="CWE id, e.g. `CWE-79`, or `NVD-CWE-Other` / `NVD-CWE-noinfo`")


class Reference(BaseModel):
    url: str = Field(description="the referenced page")
    source: str | None = Field(None, description="who added the reference")
    tags: JsonList = Field(
        default_factory=list, description="NVD reference tags, e.g. `Patch`, `Vendor Advisory`"
    )


class CpeMatch(BaseModel):
    configuration: int = Field(description="index of the configuration in the CVE record")
    configuration_operator: str | None = Field(
        None,
        description="`AND` or `OR` between the configuration's nodes (`AND`: the vulnerable "
        "software only on the platform of the other node); null when NVD states none",
    )
    node: int = Field(description="index of the node within its configuration")
    node_operator: str | None = Field(None, description="`OR` or `AND` between the node's matches")
    node_negate: bool | None = Field(None, description="whether the node is negated")
    criteria: str = Field(description="CPE 2.3 match string")
    match_criteria_id: str | None = Field(None, description="NVD id of the match criteria")
    vulnerable: bool = Field(description="whether a matching product is vulnerable")
    version_start_including: str | None = Field(
        None, description="lowest affected version, included"
    )
    version_start_excluding: str | None = Field(
        None, description="lowest affected version, excluded"
    )
    version_end_including: str | None = Field(
        None, description="highest affected version, included"
    )
    version_end_excluding: str | None = Field(None, description="first fixed version (excluded)")


class Ssvc(BaseModel):
    source: str | None = Field(None, description="who assessed it (an NVD source id)")
    version: str | None = Field(None, description="SSVC version, e.g. `2.0.3`")
    role: str | None = Field(None, description="the assessor's role, e.g. `CISA Coordinator`")
    assessed_at: UtcDateTime | None = Field(None, description="when it was assessed (UTC)")
    exploitation: str | None = Field(
        None, description="state of exploitation: `none`, `poc` (proof of concept) or `active`"
    )
    automatable: str | None = Field(
        None, description="whether an attacker can automate exploitation: `no` or `yes`"
    )
    technical_impact: str | None = Field(
        None, description="control an exploit gains: `partial` or `total`"
    )
    raw: Any = Field(
        description="the assessment as NVD sent it (a JSON object; deeper than 32 levels "
        "is cut to `\"...\"`)"
    )


class CveSummary(BaseModel):
    cve_id: str = Field(description="CVE id, e.g. `CVE-2023-27314`")
    description: str | None = Field(None, description="the English description")
    published: UtcDateTime | None = Field(None, description="first published (UTC)")
    last_modified: UtcDateTime = Field(description="last modified at NVD (UTC)")
    vuln_status: str | None = Field(
        None, description="NVD status: `Analyzed`, `Modified`, `Rejected`..."
    )
    cvss_version: str | None = Field(
        None, description="CVSS version of the best metric (null: no metric)"
    )
    base_score: float | None = Field(None, description="base score of the best metric")
    base_severity: str | None = Field(None, description="severity of the best metric")


class CveDetail(CveSummary):
    source_identifier: str | None = Field(None, description="who published the record (a CNA)")
    cisa_exploit_add: date | None = Field(
        None, description="added to CISA's Known Exploited Vulnerabilities"
    )
    cisa_action_due: date | None = Field(None, description="CISA's remediation due date")
    cisa_required_action: str | None = Field(None, description="CISA's required action")
    cisa_vulnerability_name: str | None = Field(
        None, description="CISA's name of the vulnerability"
    )
    cve_tags: JsonList = Field(
        default_factory=list, description="CVE tags (e.g. `disputed`) as sent by NVD"
    )
    metrics: list[Metric] = Field(description="every metric, best first")
    weaknesses: list[Weakness] = Field(description="CWE weaknesses")
    references: list[Reference] = Field(description="references")
    cpe_matches: list[CpeMatch] = Field(
        description="affected products (CPE matches) of every configuration"
    )
    ssvc: list[Ssvc] = Field(
        description="CISA's SSVC assessments (Stakeholder-Specific Vulnerability "
        "Categorization), newest first"
    )


class CvePage(BaseModel):
    total: int = Field(description="number of CVEs matching the filters, over all pages")
    limit: int = Field(description="page size asked for")
    offset: int = Field(description="number of matching CVEs skipped")
    items: list[CveSummary] = Field(
        description="the page, newest `last_modified` first, then by id"
    )


# --- query parameters ------------------------------------------------------------------

class Severity(str, Enum):
    NONE = "NONE"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _parse_since(value: Any) -> Any:
    """ISO-8601 date or datetime; naive values are UTC; the result is UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as error:
            raise ValueError(
                "expected an ISO-8601 date or datetime, "
                "e.g. 2024-03-01 or 2024-03-01T12:00:00+02:00"
            ) from error
    if isinstance(value, datetime):
        try:
            return as_utc(value)
        except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is in year 0 in UTC
            raise ValueError("the datetime in UTC is outside years 1 to 9999") from None
    return value


SeverityQuery = Annotated[
    Severity | None,
    BeforeValidator(_upper),
    Query(
        description=f"only CVEs whose best metric has this severity (any case). {BEST_METRIC_RULE}"
    ),
]
SinceQuery = Annotated[
    datetime | None,
    BeforeValidator(_parse_since),
    Query(
        description="only CVEs with `last_modified` at or after this ISO-8601 datetime or date "
        "(naive values are UTC; a date means its midnight UTC)",
        examples=["2024-03-01", "2024-03-01T12:00:00+02:00"],
    ),
]
OffsetQuery = paging.offset("matching CVEs")
CveIdPath = Annotated[
    str,
    Path(pattern=CVE_ID_PATTERN, description="CVE id, any case, e.g. `CVE-2023-27314`"),
]


# --- queries ---------------------------------------------------------------------------

_VERSION_RANK = sa.case(
    {"4.0": 40, "3.1": 31, "3.0": 30, "2.0": 20}, value=cve_metric.c.cvss_version, else_=0
)
METRIC_ORDER = (
    _VERSION_RANK.desc(),
    cve_metric.c.cvss_version.desc(),
    sa.case((cve_metric.c.type == "Primary", 0), else_=1),
    cve_metric.c.base_score.is_(None),
    cve_metric.c.base_score.desc(),
    cve_metric.c.source,
)
SUMMARY_COLUMNS = (
    cve.c.cve_id,
    cve.c.description,
    cve.c.published,
    cve.c.last_modified,
    cve.c.vuln_status,
)
BEST_COLUMNS = ("cvss_version", "base_score", "base_severity")
SSVC_ORDER = (
    cve_ssvc.c.assessed_at.is_(None),
    cve_ssvc.c.assessed_at.desc(),
    cve_ssvc.c.source,
    cve_ssvc.c.role,
    cve_ssvc.c.version,
)


def best_metrics(cve_keys: sa.Select | list[int]) -> sa.Subquery:
    """The best metric (see module doc) of each CVE in `cve_keys`: one row per cve_key."""
    ranked = (
        sa.select(
            cve_metric.c.cve_key,
            *(cve_metric.c[name] for name in BEST_COLUMNS),
            sa.func.row_number()
            .over(partition_by=cve_metric.c.cve_key, order_by=METRIC_ORDER)
            .label("rank"),
        )
        .where(cve_metric.c.cve_key.in_(cve_keys))
        .subquery("ranked")
    )
    return sa.select(ranked).where(ranked.c.rank == 1).subquery("best")


@router.get(
    "/cves",
    response_model=CvePage,
    summary="List CVEs",
    description="CVEs newest `last_modified` first (then by id), filtered and paged; each item "
    f"carries the scores of its best metric. {BEST_METRIC_RULE} CVEs without metrics have "
    "null scores and never match a severity filter.",
)
def list_cves(
    connection: Connection,
    severity: SeverityQuery = None,
    modified_since: SinceQuery = None,
    limit: paging.Limit = paging.DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
) -> CvePage:
    filters: list[sa.ColumnElement[bool]] = []
    if modified_since is not None:
        filters.append(cve.c.last_modified >= modified_since)
    if severity is not None:
        best = best_metrics(sa.select(cve.c.cve_key).where(*filters))
        matching = sa.select(best.c.cve_key).where(
            sa.func.upper(best.c.base_severity) == severity.value
        )
        filters.append(cve.c.cve_key.in_(matching))

    total = connection.execute(
        sa.select(sa.func.count()).select_from(cve).where(*filters)
    ).scalar_one()
    rows = connection.execute(
        sa.select(cve.c.cve_key, *SUMMARY_COLUMNS)
        .where(*filters)
        .order_by(cve.c.last_modified.desc(), cve.c.cve_id)
        .limit(limit)
        .offset(offset)
    ).all()
    scores = _best_of(connection, [row.cve_key for row in rows])
    items = [CveSummary(**row._asdict(), **scores.get(row.cve_key, {})) for row in rows]
    return CvePage(total=total, limit=limit, offset=offset, items=items)


def _best_of(connection: sa.Connection, keys: list[int]) -> dict[int, dict[str, Any]]:
    if not keys:
        return {}
    best = best_metrics(keys)
    return {
        row.cve_key: {name: row._mapping[name] for name in BEST_COLUMNS}
        for row in connection.execute(sa.select(best))
    }


@router.get(
    "/cves/{cve_id}",
    response_model=CveDetail,
    summary="One CVE with its metrics, weaknesses, references, CPE matches and SSVC",
    description="The CVE as stored in the warehouse; `metrics` lists the best metric first. "
    + BEST_METRIC_RULE,
    responses={404: {"description": "no such CVE in the warehouse"}},
)
def get_cve(cve_id: CveIdPath, connection: Connection) -> CveDetail:
    cve_id = cve_id.upper()
    row = connection.execute(sa.select(cve).where(cve.c.cve_id == cve_id)).one_or_none()
    if row is None:
        raise HTTPException(404, detail=f"{cve_id} is not in the warehouse")
    key = row.cve_key

    def children(table: sa.Table, *order_by: Any) -> list[dict[str, Any]]:
        columns = [c for c in table.c if c.name != "cve_key"]
        statement = sa.select(*columns).where(table.c.cve_key == key).order_by(*order_by)
        return [dict(r._mapping) for r in connection.execute(statement)]

    metrics = children(cve_metric, *METRIC_ORDER)
    best = {name: metrics[0][name] for name in BEST_COLUMNS} if metrics else {}
    return CveDetail(
        **{name: value for name, value in row._mapping.items() if name != "cve_key"},
        **best,
        metrics=metrics,
        weaknesses=children(
            cve_weakness, cve_weakness.c.type, cve_weakness.c.source, cve_weakness.c.cwe_id
        ),
        references=children(cve_reference, cve_reference.c.url, cve_reference.c.source),
        cpe_matches=children(
            cve_cpe_match,
            cve_cpe_match.c.configuration,
            cve_cpe_match.c.node,
            cve_cpe_match.c.criteria,
        ),
        ssvc=[
            {**assessment, "raw": parsed_json(assessment["raw"])}
            for assessment in children(cve_ssvc, *SSVC_ORDER)
        ],
    )
