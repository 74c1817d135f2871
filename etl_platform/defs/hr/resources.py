"""The HR landing place, as a Dagster resource: where the CSV files of the migration are dropped.

A folder or an `s3://` prefix receiving `departments.csv`, `jobs.csv` and `hired_employees.csv`:
comma-separated, no header row, columns in table order, some fields left empty.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field
from upath import UPath

from etl_platform.defs.hr import tables
from etl_platform.lib.storage import modified_at, storage_root

# The file each table is migrated from, in load order (referenced tables first).
LANDING_FILES = {f"{name}.csv": table for name, table in tables.INGESTED.items()}


@dataclass(frozen=True)
class LandedFile:
    """One known file of the landing place, and the version it is at."""

    name: str
    path: UPath
    version: str = field(compare=False)
    modified: datetime = field(compare=False)
    size: int = field(compare=False)


class HrLandingResource(ConfigurableResource):
    """The HR landing place (`HR_LANDING_URL`, default `$ETL_HOME/landing/hr`)."""

    url: str = Field(description="a folder or an s3:// prefix (on S3, AWS_ENDPOINT_URL is honoured)")

    def root(self) -> UPath:
        """The landing place as a path, local or S3."""
        return storage_root(self.url)

    def landed_files(self) -> dict[str, LandedFile]:
        """The known files the landing holds (name -> file), in load order.

        The version is the object's ETag on S3, `mtime:size` on disk: a file dropped again with
        other content, or touched, gets a new version. Other files are ignored.
        """
        root = self.root()
        fs = root.fs
        # Listings are cached by fsspec (s3fs keeps them for the life of the process): ask afresh.
        fs.invalidate_cache(root.path)
        try:
            entries = fs.ls(root.path, detail=True)
        except FileNotFoundError:
            return {}
        found = {}
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") != "file" or name not in LANDING_FILES:
                continue
            found[name] = LandedFile(
                name=name,
                path=root / name,
                version=_version(entry),
                modified=modified_at(entry),
                size=int(entry.get("size") or 0),
            )
        return {name: found[name] for name in LANDING_FILES if name in found}


def _version(entry: Mapping[str, Any]) -> str:
    etag = entry.get("ETag") or entry.get("etag")
    if etag:
        return str(etag).strip('"')
    return f"{entry.get('mtime')}:{entry.get('size')}"
