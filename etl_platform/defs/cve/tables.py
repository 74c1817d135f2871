"""Warehouse tables of the `cve` group (DESIGN.md contract), declared once as data.

The generic merge reads everything it needs from here: primary keys, the version column
that makes newer records win, and the parent link that makes child tables replaceable.
"""

import sqlalchemy as sa

from etl_platform.lib.warehouse import declare

metadata = declare(sa.MetaData())  # created by the warehouse resource on first use
UTC_TIMESTAMP = sa.DateTime(timezone=True)
# CVE ids are ASCII: byte order ("C") compares them like any collation would, and keeps the
# primary-key index off the locale's string comparison (about 15% of a day's upsert).
CVE_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

cve = sa.Table(
    "cve",
    metadata,
    sa.Column("cve_id", CVE_ID, primary_key=True),
    sa.Column("cve_key", sa.BigInteger, unique=True, nullable=False, comment="CVE-YYYY-N as YYYY * 10^10 + N"),
    sa.Column("source_identifier", sa.Text),
    sa.Column("description", sa.Text, comment="the English description"),
    sa.Column("published", UTC_TIMESTAMP),
    sa.Column("last_modified", UTC_TIMESTAMP, nullable=False),
    sa.Column("vuln_status", sa.Text),
    sa.Column("cisa_exploit_add", sa.Date),
    sa.Column("cisa_action_due", sa.Date),
    sa.Column("cisa_required_action", sa.Text),
    sa.Column("cisa_vulnerability_name", sa.Text),
    sa.Column("cve_tags", sa.Text, comment="JSON list of tag objects"),
    sa.Index("ix_cve_last_modified", "last_modified"),
    info={"version_column": "last_modified"},
    comment="One row per CVE at its newest known version (newer last_modified wins).",
)


def _child(name: str, comment: str, *columns: sa.Column) -> sa.Table:
    # The link to `cve` is declared as data, not as a database constraint: a per-row
    # referential trigger doubled the load time, and the `foreign_keys_intact` check watches it.
    return sa.Table(
        name,
        metadata,
        sa.Column("cve_key", sa.BigInteger, nullable=False, index=True),
        *columns,
        info={"parent": "cve", "parent_key": ("cve_key",)},
        comment=comment,
    )


cve_metric = _child(
    "cve_metric",
    "One row per CVSS metric entry (v2, v3.0, v3.1, v4.0) of each CVE; replaced when the CVE changes.",
    sa.Column("cvss_version", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("type", sa.Text),
    sa.Column("base_score", sa.Numeric(3, 1)),
    sa.Column("base_severity", sa.Text),
    sa.Column("vector_string", sa.Text),
    sa.Column("exploitability_score", sa.Numeric(3, 1)),
    sa.Column("impact_score", sa.Numeric(3, 1)),
)
cve_weakness = _child(
    "cve_weakness",
    "One row per weakness (CWE) stated for each CVE; replaced when the CVE changes.",
    sa.Column("source", sa.Text),
    sa.Column("type", sa.Text),
    sa.Column("cwe_id", sa.Text, nullable=False),
)
cve_reference = _child(
    "cve_reference",
    "One row per reference link of each CVE; replaced when the CVE changes.",
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("tags", sa.Text, comment="JSON list"),
)
cve_cpe_match = _child(
    "cve_cpe_match",
    "One row per CPE match criterion of each CVE's configurations; replaced when the CVE changes.",
    sa.Column("configuration", sa.Integer, nullable=False),
    sa.Column(
        "configuration_operator",
        sa.Text,
        comment="AND / OR between the configuration's nodes (AND: vulnerable software on this platform)",
    ),
    sa.Column("node", sa.Integer, nullable=False),
    sa.Column("node_operator", sa.Text),
    sa.Column("node_negate", sa.Boolean),
    sa.Column("criteria", sa.Text, nullable=False),
    sa.Column("match_criteria_id", sa.Text),
    sa.Column("vulnerable", sa.Boolean, nullable=False),
    sa.Column("version_start_including", sa.Text),
    sa.Column("version_start_excluding", sa.Text),
    sa.Column("version_end_including", sa.Text),
    sa.Column("version_end_excluding", sa.Text),
)
cve_ssvc = _child(
    "cve_ssvc",
    "One row per SSVC assessment (CISA's Stakeholder-Specific Vulnerability Categorization, metrics.ssvcV*) "
    "of each CVE; replaced when the CVE changes.",
    sa.Column("source", sa.Text, comment="who assessed it (an NVD source id)"),
    sa.Column("version", sa.Text, comment="SSVC version, e.g. 2.0.3"),
    sa.Column("role", sa.Text, comment="e.g. CISA Coordinator"),
    sa.Column("assessed_at", UTC_TIMESTAMP, comment="ssvcData.timestamp"),
    sa.Column("exploitation", sa.Text, comment="none / poc / active"),
    sa.Column("automatable", sa.Text, comment="no / yes"),
    sa.Column("technical_impact", sa.Text, comment="partial / total"),
    sa.Column("raw", sa.Text, nullable=False, comment="the entry as NVD sent it (JSON)"),
)
cve_change = sa.Table(
    "cve_change",
    metadata,
    sa.Column("cve_key", sa.BigInteger, primary_key=True),
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("change", sa.Text, nullable=False, comment="new | changed"),
    sa.Column("last_modified", UTC_TIMESTAMP, nullable=False),
    sa.Column("previous_last_modified", UTC_TIMESTAMP),
    comment="One row per CVE per day on which it was new or changed.",
)

CHILD_TABLES = (cve_metric, cve_weakness, cve_reference, cve_cpe_match, cve_ssvc)
