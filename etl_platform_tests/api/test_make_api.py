"""`make api` and `make dev` as a newcomer runs them: ports chosen on the command line, and
`make api` saying when writes are disabled."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# The virtualenv is taken as installed: the test must not reinstall the shared environment.
MAKE = ["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str, process: subprocess.Popen, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.2)  # not listening yet
    return False


def test_make_api_serves_on_api_port_and_says_writes_are_disabled(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ETL_API_TOKEN", "MAKEFLAGS")}
    env["ETL_WAREHOUSE_URL"] = f"sqlite:///{tmp_path / 'warehouse.db'}"
    process = subprocess.Popen(
        [*MAKE, "api", f"API_PORT={port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and its uvicorn in a group of their own, stopped together
    )
    try:
        assert _healthy(f"http://127.0.0.1:{port}/healthz", process), "make api did not serve"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert "ETL_API_TOKEN is not set: writes are disabled" in output, output


def test_make_dev_and_api_ports_are_configurable():
    def dry_run(*args: str) -> str:
        run = subprocess.run([*MAKE, "-n", *args], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert "dagster dev -w workspace.yaml --host 127.0.0.1 --port 3000" in dry_run("dev")
    assert "--port 3999" in dry_run("dev", "DAGSTER_PORT=3999")
    assert "uvicorn etl_platform.api:app --host 127.0.0.1 --port 8000" in dry_run("api")
    assert "--port 8999" in dry_run("api", "API_PORT=8999")
