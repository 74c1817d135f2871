"""Real services for the tests: a fresh Postgres database, a loopback S3 server, stand-in APIs.

Postgres runs on 127.0.0.1:5432 (trust auth, user postgres) on every development and CI
machine; each test that asks for it gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from etl_platform.devservers import EcbStandIn, NvdStandIn
from etl_platform.lib import warehouse as warehouse_lib

PG_ADMIN_URL = os.environ.get("ETL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def new_database(prefix: str = "etl_test") -> Iterator[sa.URL]:
    """A new, empty Postgres database (its URL), dropped on leaving."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name)
    finally:
        warehouse_lib.dispose_engines()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a new, empty Postgres database, dropped when the test ends."""
    with new_database() as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["postgres", "sqlite"])
def any_warehouse_url(request, tmp_path) -> Iterator[str]:
    """Each test using it runs once on Postgres and once on SQLite."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 API (moto in server mode) on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> str:
    """A new bucket on the loopback S3 server, with the environment pointed at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"etl-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def nvd() -> Iterator[NvdStandIn]:
    """The NVD stand-in serving the shipped real records (all last modified on 2023-10-18)."""
    with NvdStandIn() as server:
        yield server


@pytest.fixture
def ecb() -> Iterator[EcbStandIn]:
    """The ECB stand-in (data API and reference-rate files) serving the shipped recordings."""
    with EcbStandIn() as server:
        yield server


@pytest.fixture
def etl_env(tmp_path, monkeypatch) -> dict[str, str]:
    """A private ETL_HOME with embedded defaults, so no test touches the user's files."""
    home = tmp_path / "etl"
    monkeypatch.setenv("ETL_HOME", str(home))
    for name in ("ETL_STORAGE_URL", "ETL_WAREHOUSE_URL", "NVD_API_URL", "NVD_API_KEY", "ETL_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return {"ETL_HOME": str(home)}
