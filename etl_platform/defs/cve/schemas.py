"""Pandera models of the `cve` group's typed layers: the gate every clean and diff frame passes."""

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from etl_platform.lib.changes import SUPERSEDED, change_kinds
from etl_platform.lib.schema_types import Int64, StrictModel, Text, UtcTimestamp

SEVERITIES = ["NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
CVSS_VERSIONS = ["2.0", "3.0", "3.1", "4.0"]
CHANGE_KINDS = change_kinds(SUPERSEDED)



class CveModel(StrictModel):
    """One row per CVE, as of its `lastModified`."""

    cve_id: Series[Text] = pa.Field(str_matches=r"^CVE-\d{4}-\d{4,}$", description="CVE identifier")
    cve_key: Series[Int64] = pa.Field(gt=0, description="integer form of the id (year * 10^10 + number)")
    source_identifier: Series[Text] = pa.Field(nullable=True, description="who assigned the CVE")
    description: Series[Text] = pa.Field(nullable=True, description="English description")
    published: Series[UtcTimestamp] = pa.Field(nullable=True, description="first published (UTC)")
    last_modified: Series[UtcTimestamp] = pa.Field(description="last modified in NVD (UTC)")
    vuln_status: Series[Text] = pa.Field(nullable=True, description="NVD analysis status, e.g. Analyzed, Rejected")
    cisa_exploit_add: Series[pd.Timestamp] = pa.Field(nullable=True, description="added to CISA KEV on")
    cisa_action_due: Series[pd.Timestamp] = pa.Field(nullable=True, description="CISA action due date")
    cisa_required_action: Series[Text] = pa.Field(nullable=True, description="CISA required action")
    cisa_vulnerability_name: Series[Text] = pa.Field(nullable=True, description="CISA vulnerability name")
    cve_tags: Series[Text] = pa.Field(nullable=True, description="cveTags as JSON text")

    class Config:
        description = "NVD CVE records, one per CVE"


class CveMetricModel(StrictModel):
    """One row per CVSS metric entry of every version present."""

    cve_key: Series[Int64] = pa.Field(gt=0, description="the CVE")
    cvss_version: Series[Text] = pa.Field(isin=CVSS_VERSIONS, description="CVSS version")
    source: Series[Text] = pa.Field(nullable=True, description="who scored it")
    type: Series[Text] = pa.Field(nullable=True, description="Primary or Secondary")
    base_score: Series[float] = pa.Field(ge=0, le=10, nullable=True, description="CVSS base score")
    base_severity: Series[Text] = pa.Field(isin=SEVERITIES, nullable=True, description="severity band")
    vector_string: Series[Text] = pa.Field(nullable=True, description="CVSS vector")
    exploitability_score: Series[float] = pa.Field(ge=0, le=10, nullable=True, description="exploitability")
    impact_score: Series[float] = pa.Field(ge=0, le=10, nullable=True, description="impact")

    class Config:
        description = "CVSS metrics"


class CveWeaknessModel(StrictModel):
    """One row per weakness (CWE) statement."""

    cve_key: Series[Int64] = pa.Field(gt=0, description="the CVE")
    source: Series[Text] = pa.Field(nullable=True, description="who stated it")
    type: Series[Text] = pa.Field(nullable=True, description="Primary or Secondary")
    cwe_id: Series[Text] = pa.Field(description="CWE-n, NVD-CWE-Other or NVD-CWE-noinfo")

    class Config:
        description = "weaknesses"


class CveReferenceModel(StrictModel):
    """One row per reference link."""

    cve_key: Series[Int64] = pa.Field(gt=0, description="the CVE")
    url: Series[Text] = pa.Field(description="reference URL")
    source: Series[Text] = pa.Field(nullable=True, description="who added it")
    tags: Series[Text] = pa.Field(nullable=True, description="tags as JSON text")

    class Config:
        description = "references"


class CveCpeMatchModel(StrictModel):
    """One row per CPE match criterion of the CVE's configurations."""

    cve_key: Series[Int64] = pa.Field(gt=0, description="the CVE")
    configuration: Series[int] = pa.Field(ge=0, description="position of the configuration")
    configuration_operator: Series[Text] = pa.Field(
        nullable=True, description="AND / OR between the configuration's nodes"
    )
    node: Series[int] = pa.Field(ge=0, description="position of the node in the configuration")
    node_operator: Series[Text] = pa.Field(nullable=True, description="AND / OR")
    node_negate: Series[bool] = pa.Field(description="node negated")
    criteria: Series[Text] = pa.Field(str_startswith="cpe:", description="CPE 2.3 match string")
    match_criteria_id: Series[Text] = pa.Field(nullable=True, description="NVD match criteria id")
    vulnerable: Series[bool] = pa.Field(description="vulnerable configuration")
    version_start_including: Series[Text] = pa.Field(nullable=True, description="version range")
    version_start_excluding: Series[Text] = pa.Field(nullable=True, description="version range")
    version_end_including: Series[Text] = pa.Field(nullable=True, description="version range")
    version_end_excluding: Series[Text] = pa.Field(nullable=True, description="version range")

    class Config:
        description = "CPE matches"


class CveSsvcModel(StrictModel):
    """One row per SSVC assessment (CISA's decision points) of the CVE."""

    cve_key: Series[Int64] = pa.Field(gt=0, description="the CVE")
    source: Series[Text] = pa.Field(nullable=True, description="who assessed it (an NVD source id)")
    version: Series[Text] = pa.Field(description="SSVC version, e.g. 2.0.3")
    role: Series[Text] = pa.Field(nullable=True, description="e.g. CISA Coordinator")
    assessed_at: Series[UtcTimestamp] = pa.Field(nullable=True, description="when it was assessed (UTC)")
    # Values are kept as sent (lower case): a decision point gaining a value must not quarantine a CVE.
    exploitation: Series[Text] = pa.Field(nullable=True, description="none, poc or active")
    automatable: Series[Text] = pa.Field(nullable=True, description="no or yes")
    technical_impact: Series[Text] = pa.Field(nullable=True, description="partial or total")
    raw: Series[Text] = pa.Field(description="the entry as NVD sent it (JSON)")

    class Config:
        description = "SSVC assessments"


class CveDiffModel(StrictModel):
    """What partition D says of each of its CVEs against the previous known version."""

    cve_id: Series[Text] = pa.Field(unique=True, description="CVE identifier")
    cve_key: Series[Int64] = pa.Field(gt=0, unique=True, description="integer form of the id")
    last_modified: Series[UtcTimestamp] = pa.Field(description="version in this partition")
    previous_last_modified: Series[UtcTimestamp] = pa.Field(nullable=True, description="version known before")
    change: Series[Text] = pa.Field(
        isin=CHANGE_KINDS,
        description="new, changed, unchanged (already loaded) or superseded (a newer version is loaded)",
    )

    class Config:
        description = "per-day changes"


CLEAN_MODELS = {
    "cves": CveModel,
    "cve_metrics": CveMetricModel,
    "cve_weaknesses": CveWeaknessModel,
    "cve_references": CveReferenceModel,
    "cve_cpe_matches": CveCpeMatchModel,
    "cve_ssvc": CveSsvcModel,
}
