"""Platform settings read from the environment (see DESIGN.md, "Configuration").

Read when a resource is used, never at import time, so that a code location loads
anywhere and a test can point the platform elsewhere by setting variables.
"""

from __future__ import annotations

import os
from pathlib import Path


def etl_home() -> Path:
    """Local working folder (`ETL_HOME`, default `./.etl`), as an absolute path."""
    return Path(os.environ.get("ETL_HOME") or ".etl").expanduser().resolve()


def storage_url() -> str:
    """Base of raw / clean / diff / backup files: a folder or `s3://bucket/prefix`."""
    return os.environ.get("ETL_STORAGE_URL") or str(etl_home() / "storage")


def warehouse_url() -> str:
    """SQLAlchemy URL of the warehouse; SQLite under `ETL_HOME` when unset."""
    return os.environ.get("ETL_WAREHOUSE_URL") or f"sqlite:///{etl_home() / 'warehouse.db'}"


def aws_endpoint_url() -> str | None:
    """S3-compatible endpoint (`AWS_ENDPOINT_URL`); None means AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def env(name: str, default: str | None = None) -> str | None:
    """A variable of the environment, empty counting as unset."""
    return os.environ.get(name) or default
