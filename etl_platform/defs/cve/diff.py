"""Per-day diff: what each CVE of a day is against the version the warehouse knew before."""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from etl_platform.defs.cve.schemas import CveDiffModel
from etl_platform.defs.cve.tables import cve, cve_change
from etl_platform.lib.changes import LOADABLE, NEW, UNCHANGED, classify
from etl_platform.lib.key_lookups import select_in_chunks
from etl_platform.lib.schema_types import TEXT, UTC_NS


def known_versions(connection: sa.Connection, keys: pd.Series, day: date) -> pd.DataFrame:
    """Stored `last_modified` of these CVEs, and the change recorded for them on `day` if any."""
    stored = select_in_chunks(
        connection,
        lambda chunk: sa.select(cve.c.cve_key, cve.c.last_modified).where(cve.c.cve_key.in_(chunk)),
        [int(k) for k in keys.dropna().unique()],
    )
    recorded = connection.execute(
        sa.select(cve_change.c.cve_key, cve_change.c.change, cve_change.c.previous_last_modified).where(
            cve_change.c.partition_date == day
        )
    ).all()
    known = pd.DataFrame(stored, columns=["cve_key", "stored_last_modified"])
    known["stored_last_modified"] = pd.to_datetime(known["stored_last_modified"], utc=True).astype(UTC_NS)
    changes = pd.DataFrame(recorded, columns=["cve_key", "recorded_change", "recorded_previous"])
    changes["recorded_previous"] = pd.to_datetime(changes["recorded_previous"], utc=True).astype(UTC_NS)
    return known.merge(changes, on="cve_key", how="outer").astype({"cve_key": "Int64"})


def diff_day(cves: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """Classify every CVE of the day: new, changed, unchanged (this version is loaded) or superseded.

    A version already loaded keeps the change recorded when it was loaded, so re-running a day
    gives the same diff; a day older than what is stored never counts as a change.
    """
    rows = cves[["cve_id", "cve_key", "last_modified"]].merge(known, on="cve_key", how="left")
    stored = rows["stored_last_modified"]
    same = stored.notna() & (stored == rows["last_modified"])
    older = stored.notna() & (stored > rows["last_modified"])
    rows["change"] = classify(stored.notna(), same, older)
    rows.loc[same, "change"] = rows.loc[same, "recorded_change"].fillna(UNCHANGED)
    rows["previous_last_modified"] = stored.where(~same, rows["recorded_previous"])
    rows.loc[rows["change"] == NEW, "previous_last_modified"] = pd.NaT
    columns = list(CveDiffModel.to_schema().columns)
    types = {"previous_last_modified": UTC_NS, "last_modified": UTC_NS, "change": TEXT}
    return rows[columns].astype(types).reset_index(drop=True)


def change_rows(diff: pd.DataFrame, day: date) -> pd.DataFrame:
    """Rows of `cve_change` for the CVEs of the day that are new or changed."""
    loaded = diff[diff["change"].isin(LOADABLE)]
    return pd.DataFrame(
        {
            "cve_key": loaded["cve_key"],
            "partition_date": day,
            "change": loaded["change"],
            "last_modified": loaded["last_modified"],
            "previous_last_modified": loaded["previous_last_modified"],
        }
    )
