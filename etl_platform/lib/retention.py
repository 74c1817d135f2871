"""Retention: delete files of a storage layer older than a given age, on disk or S3 alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from upath import UPath

from etl_platform.lib.storage import modified_at


@dataclass
class Sweep:
    deleted: list[str] = field(default_factory=list)
    kept: int = 0
    bytes_freed: int = 0


def delete_older_than(folder: UPath, max_age: timedelta, now: datetime | None = None) -> Sweep:
    """Delete every file below `folder` last written more than `max_age` ago."""
    sweep = Sweep()
    if not folder.exists():
        return sweep
    cutoff = (now or datetime.now(timezone.utc)) - max_age
    for path, info in folder.fs.find(folder.path, detail=True).items():
        if modified_at(info) < cutoff:
            folder.fs.rm_file(path)
            sweep.deleted.append(path)
            sweep.bytes_freed += int(info.get("size") or 0)
        else:
            sweep.kept += 1
    return sweep
