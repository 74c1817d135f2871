"""Asset check results computed on DataFrames: the Pandera gate, key uniqueness, known parents.

Every failing result carries the failing rows in its metadata, so the Dagster UI shows what
broke, not only that something did.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pandera.pandas as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

SCHEMA_CHECK = "pandera_schema"
UNIQUE_KEY_CHECK = "unique_key"
KNOWN_PARENT_CHECK = "parent_keys_known"
SHOWN_ROWS = 20


def schema_check_spec(asset_key: AssetKey, model: type[pa.DataFrameModel]) -> AssetCheckSpec:
    """A blocking spec: when the schema fails, nothing downstream runs."""
    return AssetCheckSpec(
        SCHEMA_CHECK, asset=asset_key, blocking=True, description=f"rows satisfy the Pandera model {model.__name__}"
    )


def _rows_markdown(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.head(SHOWN_ROWS).to_markdown(index=True))


def schema_check(asset_key: AssetKey, model: type[pa.DataFrameModel], frame: pd.DataFrame) -> AssetCheckResult:
    """Validate lazily; on failure report the failure cases and the rows they come from."""
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        indexes = pd.to_numeric(cases["index"], errors="coerce").dropna().astype(int).unique()
        failing = frame.loc[frame.index.intersection(indexes)]
        return AssetCheckResult(
            asset_key=asset_key,
            check_name=SCHEMA_CHECK,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "failure_cases": len(cases),
                "failing_rows": len(failing),
                "failure_summary": _rows_markdown(
                    cases[["column", "check", "failure_case", "index"]].astype(str)
                ),
                "failing_row_sample": _rows_markdown(failing.astype(str)),
            },
        )
    return AssetCheckResult(
        asset_key=asset_key, check_name=SCHEMA_CHECK, passed=True, metadata={"rows_checked": len(frame)}
    )


def unique_key_check(asset_key: AssetKey, frame: pd.DataFrame, key: Sequence[str]) -> AssetCheckResult:
    duplicated = frame[frame.duplicated(list(key), keep=False)]
    metadata = {"key": ", ".join(key), "duplicate_rows": len(duplicated)}
    if len(duplicated):
        metadata["duplicates"] = _rows_markdown(duplicated.astype(str))
    return AssetCheckResult(
        asset_key=asset_key, check_name=UNIQUE_KEY_CHECK, passed=duplicated.empty, metadata=metadata
    )


def known_parent_check(
    asset_key: AssetKey, child: pd.DataFrame, parent: pd.DataFrame, column: str
) -> AssetCheckResult:
    orphans = child[~child[column].isin(parent[column])]
    metadata = {"column": column, "orphan_rows": len(orphans)}
    if len(orphans):
        metadata["orphans"] = _rows_markdown(orphans.astype(str))
    return AssetCheckResult(asset_key=asset_key, check_name=KNOWN_PARENT_CHECK, passed=orphans.empty, metadata=metadata)
