"""Benchmark: batch ingestion through the REST API (`POST /api/v1/tables/hired_employees/rows`).

Starts `uvicorn etl_platform.api:app` on a loopback port in a child process, against a fresh
Postgres database (created here, dropped at the end), loads the departments and jobs of the
challenge CSVs through the API, then runs C concurrent clients (threads, one
`requests.Session` each) that post 1000-row batches of valid hired employees with unique ids
for D seconds. Prints rows/s sustained, batch latency (p50, p99), and the targets with
PASS/MISS. It is not a test; it checks at the end that the table holds exactly the rows
accepted and that nothing was rejected.

With C closed-loop clients, latency is about C / throughput (batches/s): p50 <= 100 ms with
8 clients needs ~80 batches/s. The single-client latency is printed too. Where the time goes
(measured in-process on the 2-core development machine, per 1000-row batch): ~32 ms of
Python CPU in the server (`check_rows` ~17 ms, the rest parsing, the id lookup, COPY and
SQLAlchemy) and ~36 ms of Postgres backend CPU (the insert with its three indexes and the
2000 foreign-key checks, COPY into the stage, commit): about 29 batches/s on two idle cores.

    python benchmarks/api_ingestion.py [--clients 8] [--seconds 20] [--workers 2]
                                       [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import requests
import sqlalchemy as sa

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SAMPLES = Path(__file__).resolve().parents[1] / "etl_platform" / "samples" / "hr_challenge"
BATCH_ROWS = 1000
ALONE_SECONDS, ALONE_BATCHES = 5.0, 100
TARGET_P50_MS = 100.0
TARGET_ROWS_PER_S = 20_000
TOKEN = "bench-" + uuid.uuid4().hex
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
ENDPOINT = "/api/v1/tables/{}/rows"
NAMES = ["Harold Vogt", "Ty Hofer", "Lyman Hadye", "Lotti Crowthe", "Gretna Lording", "Marlow Antonsen"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Database:
    """A fresh Postgres database, dropped on exit."""

    def __init__(self, admin_url: str):
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"etl_bench_api_{uuid.uuid4().hex[:10]}"
        self.url = sa.make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> "Database":
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self

    def __exit__(self, *exc) -> None:
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


class Server:
    """`uvicorn etl_platform.api:app` in a child process, on a loopback port."""

    def __init__(self, warehouse_url: str, workers: int):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ETL_WAREHOUSE_URL": warehouse_url, "ETL_API_TOKEN": TOKEN}
        command = [
            sys.executable, "-m", "uvicorn", "etl_platform.api:app", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(workers), "--log-level", "warning",
            "--no-access-log",
        ]
        self.process = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parents[1])

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}")
            try:
                if requests.get(self.base + "/healthz", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def csv_records(table: str, columns: list[str]) -> list[dict]:
    with open(SAMPLES / f"{table}.csv", newline="", encoding="utf-8") as file:
        return [dict(zip(columns, row)) for row in csv.reader(file)]


def hires_body(first_id: int) -> bytes:
    rows = [
        {
            "id": row_id,
            "name": NAMES[row_id % len(NAMES)],
            "datetime": f"2021-{1 + row_id % 12:02d}-{1 + row_id % 28:02d}T{row_id % 24:02d}:{row_id % 60:02d}:00Z",
            "department_id": 1 + row_id % 12,
            "job_id": 1 + row_id % 183,
        }
        for row_id in range(first_id, first_id + BATCH_ROWS)
    ]
    return orjson.dumps({"rows": rows})


class Load:
    """C client threads posting batches until the deadline (or the bodies run out); latencies
    in seconds. Bodies are serialised before the clock starts, so that the clients' own CPU
    (on the same cores as the server) stays small."""

    def __init__(self, base: str, clients: int, seconds: float, first_id: int, batches: int):
        self.base, self.clients, self.seconds = base, clients, seconds
        self.bodies = [hires_body(first_id + n * BATCH_ROWS) for n in range(batches)]
        self.next_id = first_id + batches * BATCH_ROWS
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.accepted = self.rejected = 0
        self.failures: list[str] = []

    def run(self) -> float:
        start = threading.Barrier(self.clients + 1)
        threads = [threading.Thread(target=self._client, args=(start,)) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        self.deadline = time.perf_counter() + self.seconds
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        return time.perf_counter() - began

    def _client(self, start: threading.Barrier) -> None:
        url = self.base + ENDPOINT.format("hired_employees")
        with requests.Session() as session:
            start.wait()
            while time.perf_counter() < self.deadline:
                with self.lock:
                    if not self.bodies:
                        return
                    body = self.bodies.pop()
                sent = time.perf_counter()
                try:
                    response = session.post(url, data=body, headers=HEADERS, timeout=120)
                except requests.RequestException as error:
                    with self.lock:
                        self.failures.append(repr(error))
                    continue
                elapsed = time.perf_counter() - sent
                with self.lock:
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                        continue
                    answer = response.json()
                    self.latencies.append(elapsed)
                    self.accepted += answer["accepted"]
                    self.rejected += answer["rejected"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--max-batches", type=int, default=1000, help="bodies prepared (80 kB each)")
    parser.add_argument("--pg-url", default=os.environ.get("ETL_TEST_PG_URL", DEFAULT_ADMIN_URL))
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with Database(args.pg_url) as database, Server(database.url, args.workers) as server:
        with requests.Session() as session:
            for table, columns in (("departments", ["id", "department"]), ("jobs", ["id", "job"])):
                body = orjson.dumps({"rows": csv_records(table, columns)})
                response = session.post(server.base + ENDPOINT.format(table), data=body, headers=HEADERS)
                response.raise_for_status()
                print(f"loaded {table}: {response.json()['accepted']} rows")

        # Warm-up (connections, stages, compiled statements in every worker), then one
        # client alone, then the measured run.
        warm = Load(server.base, args.clients, 3.0, first_id=1, batches=4 * args.clients)
        warm.run()
        alone = Load(server.base, 1, ALONE_SECONDS, first_id=warm.next_id, batches=ALONE_BATCHES)
        alone_elapsed = alone.run()
        load = Load(server.base, args.clients, args.seconds, first_id=alone.next_id, batches=args.max_batches)
        elapsed = load.run()

        engine = sa.create_engine(database.url)
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT count(*) FROM hired_employees")).scalar_one()
            logged = connection.execute(sa.text("SELECT count(*) FROM ingest_rejections")).scalar_one()
        engine.dispose()

    accepted_all = warm.accepted + alone.accepted + load.accepted
    rows_per_s = load.accepted / elapsed
    p50, p99 = (1000 * percentile(load.latencies, q) for q in (0.50, 0.99))
    alone_p50 = 1000 * percentile(alone.latencies, 0.50)
    print(f"server: uvicorn --workers {args.workers}; clients: {args.clients} threads; {os.cpu_count()} cores; "
          f"load average before the run {load_before:.1f}")
    print(f"batches: {len(load.latencies)} x {BATCH_ROWS} rows in {elapsed:.1f} s "
          f"(failures: {len(warm.failures) + len(alone.failures) + len(load.failures)})")
    print(f"throughput: {rows_per_s:,.0f} rows/s sustained   "
          f"target >= {TARGET_ROWS_PER_S:,}: {verdict(rows_per_s >= TARGET_ROWS_PER_S)}")
    print(f"latency ({args.clients} clients): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"mean {1000 * statistics.fmean(load.latencies or [float('nan')]):.1f} ms   "
          f"target p50 <= {TARGET_P50_MS:.0f} ms: {verdict(p50 <= TARGET_P50_MS)}")
    print(f"latency (1 client): p50 {alone_p50:.1f} ms, p99 {1000 * percentile(alone.latencies, 0.99):.1f} ms, "
          f"{alone.accepted / alone_elapsed:,.0f} rows/s")
    failures = warm.failures + alone.failures + load.failures
    consistent = stored == accepted_all and logged == 0 and not failures
    print(f"check: {stored:,} rows stored = {accepted_all:,} accepted, {logged} rejections logged: "
          f"{'OK' if consistent else 'MISMATCH'}")
    needed = args.clients / (TARGET_P50_MS / 1000) * BATCH_ROWS
    print(f"note: with {args.clients} closed-loop clients, p50 <= {TARGET_P50_MS:.0f} ms needs about "
          f"{needed:,.0f} rows/s (latency ~ clients / throughput)")
    for failure in failures[:5]:
        print("failure:", failure)


if __name__ == "__main__":
    main()
