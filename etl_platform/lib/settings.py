"""Platform settings read from the environment (see DESIGN.md, "Configuration").

Reads of the environment belong here. Resources never read it: `etl_platform/definitions.py`
binds their fields with `env_var_or` when the definitions load (build them afresh after
changing a variable); the API and the alerts read through the named functions below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dagster import EnvVar


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


def env_var_or(name: str, default: Any) -> Any:
    """What a resource field is bound to: `EnvVar(name)` when the variable is set, else `default`.

    Dagster reads an EnvVar when a run starts and the UI shows its name, never its value (secrets
    included). Whether the variable is set is decided now, when the definitions are built.
    """
    return EnvVar(name) if env(name) else default


def warehouse_kind() -> str:
    """The warehouse's engine as a Dagster kind: `postgres` or `sqlite` (the default)."""
    return "postgres" if warehouse_url().startswith("postgres") else "sqlite"


def api_token() -> str | None:
    """The bearer token of the REST API's write endpoints (`ETL_API_TOKEN`); None refuses them all."""
    return env("ETL_API_TOKEN")


def alert_webhook_url() -> str | None:
    """Where alerts are POSTed (`ETL_ALERT_WEBHOOK_URL`); None: alerts are only logged."""
    return env("ETL_ALERT_WEBHOOK_URL")


def ui_base_url() -> str:
    """Base of the Dagster UI that alerts link into (`ETL_UI_BASE_URL`, default `http://127.0.0.1:3000`)."""
    return (env("ETL_UI_BASE_URL") or "http://127.0.0.1:3000").rstrip("/")
