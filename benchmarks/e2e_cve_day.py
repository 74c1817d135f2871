"""End to end: one synthetic day of N CVEs (real records mutated) from the stand-in into Postgres.

The NVD stand-in runs in a child process (so its memory is not counted) with
`--synthetic-per-day N`; the `cve` group runs in this process as a scheduled day or `dagster
asset materialize --select 'group:cve' --partition D` runs it: `execute_job` on the code
location's `cve_daily` job, with its in-process executor (not `dagster.materialize`, which
keeps every step's output in memory for its result: ~0.6 GB more at this day's peak). Prints
wall time per step, rows per second, and the peak resident memory of this process. Targets
(issue #4): <= 180 s, peak RSS <= 1.5 GB for N = 300,000 on 2 cores. NVD's public rate limit
(5 or 50 requests per 30 s) is lifted for the loopback stand-in: the figure measures the
pipeline, not NVD's quota.

    python benchmarks/e2e_cve_day.py [--cves 300000] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests
import sqlalchemy as sa

DAY = "2025-06-01"
TARGET_SECONDS = 180
TARGET_RSS_GB = 1.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_standin(cves: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "etl_platform.devservers", "nvd", "--port", str(port), "--synthetic-per-day", str(cves)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/rest/json/cves/2.0"
    for _ in range(100):
        try:
            requests.get(url, params={"cveId": "CVE-2000-0001"}, timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the NVD stand-in did not start")


class RssSampler(threading.Thread):
    """Samples this process's resident memory twice a second, to attribute the peak to a step."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            with open("/proc/self/statm") as statm:
                pages = int(statm.read().split()[1])
            self.samples.append((time.time(), pages * os.sysconf("SC_PAGE_SIZE") / 1024**3))
            time.sleep(0.5)

    def peak_between(self, start: float, end: float) -> float:
        return max((gb for t, gb in self.samples if start <= t <= end), default=0.0)


def step_figures(instance, run_id: str, sampler: RssSampler) -> list[tuple[str, float, float]]:
    """(step, seconds, peak RSS in GB) of every step of the run, in order."""
    from dagster import DagsterEventType

    started: dict[str, float] = {}
    figures = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            begin = started[event.step_key]
            figures.append((event.step_key, entry.timestamp - begin, sampler.peak_between(begin, entry.timestamp)))
    return figures


def cve_daily_job():
    """The code location's `cve_daily` job (what the daily schedule runs), as Dagster
    reconstructs it: importable, no arguments."""
    from etl_platform.definitions import defs

    return defs.resolve_job_def("cve_daily")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cves", type=int, default=300_000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    database = f"etl_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    warehouse_url = sa.make_url(args.pg_url).set(database=database).render_as_string(hide_password=False)
    standin, nvd_url = start_standin(args.cves)
    home = tempfile.mkdtemp(prefix="etl_bench_")
    os.environ.update({"ETL_HOME": home, "ETL_WAREHOUSE_URL": warehouse_url})
    try:
        from dagster import DagsterInstance, execute_job, reconstructable

        from etl_platform.lib.warehouse import dispose_engines, engine_for

        instance = DagsterInstance.ephemeral()
        run_config = {
            "resources": {"nvd": {"config": {"api_url": nvd_url, "requests_per_window": 10_000}}},
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        }
        sampler = RssSampler()
        sampler.start()
        started = time.perf_counter()
        result = execute_job(
            reconstructable(cve_daily_job), instance=instance, tags={"dagster/partition": DAY}, run_config=run_config
        )
        seconds = time.perf_counter() - started
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        with engine_for(warehouse_url).connect() as connection:
            loaded = connection.execute(sa.text("SELECT count(*) FROM cve")).scalar_one()
        print(f"\n{args.cves:,} CVEs for {DAY}: success={result.success}, {loaded:,} rows in cve")
        for step, step_seconds, peak in step_figures(instance, result.run_id, sampler):
            print(f"  step {step:<45} {step_seconds:8.1f} s   peak RSS {peak:5.2f} GB")
        sampler.running = False
        print(f"  total {seconds:8.1f} s  ({args.cves / seconds:,.0f} CVEs/s)  target <= {TARGET_SECONDS} s: "
              f"{'PASS' if seconds <= TARGET_SECONDS else 'MISS'}")
        print(f"  peak RSS {peak_gb:.2f} GB  target <= {TARGET_RSS_GB} GB: {'PASS' if peak_gb <= TARGET_RSS_GB else 'MISS'}")
        dispose_engines()
        return 0 if result.success and loaded == args.cves else 1
    finally:
        standin.terminate()
        standin.wait()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        subprocess.run(["rm", "-rf", home])


if __name__ == "__main__":
    sys.exit(main())
