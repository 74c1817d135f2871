"""Benchmark: the platform's upsert against the usual alternatives, on 200k CVE-shaped rows.

Prints figures; it is not a test. See benchmarks/README.md for how to run it and what each
figure means. In short: the same batch of N rows (half new, half newer versions of stored
rows with a changed description) is upserted into a `cve` table already holding the first
half, with

1. the platform's `etl_platform.lib.upsert.merge`;
2. pandas `to_sql` into a staging table, then `INSERT ... ON CONFLICT DO UPDATE`;
3. dlt's merge (`write_disposition="merge"`, arrow input, postgres destination);
4. a per-row SELECT, then UPDATE or INSERT loop (timed on a 10,000-row sample);
5. the ceiling: a raw `COPY` of the same rows into an empty, unindexed table.

Every method starts from the same state (reset untimed) and must end in the same state,
which is checked with a fingerprint of (cve_id, last_modified, description).

    python benchmarks/upsert_cve.py [--rows 200000] [--pg-url ADMIN_URL] [--skip-dlt]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql

from etl_platform.defs.cve import tables
from etl_platform.defs.cve.schemas import CveModel
from etl_platform.lib.upsert import merge
from etl_platform.lib.warehouse import dispose_engines, engine_for

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOOP_ROWS = 10_000
# dlt's merge: (loader file format, with the indexes of `cve`?). dlt's own table has no index.
DLT_RUNS = (("insert_values", True), ("csv", True), ("csv", False))
TARGETS = {"ceiling": 0.25, "dlt": 4.0, "loop": 30.0}

CVE = tables.cve
COLUMNS = [c.name for c in CVE.columns]
CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")

WORDS = (
    "a vulnerability in the component allows remote attackers to execute arbitrary code via crafted "
    "request improper input validation of user supplied data buffer overflow heap use after free "
    "cross site scripting sql injection authentication bypass privilege escalation denial of service "
    "memory corruption path traversal server side request forgery when processing malformed packet "
    "affected versions before through prior to an unauthenticated local attacker could exploit this "
    "issue by sending specially file upload endpoint plugin for wordpress administrator interface "
    "kernel driver firmware router web management console api token session cookie integer overflow "
    "race condition null pointer dereference out of bounds read write information disclosure"
).split()
PRODUCTS = [
    "Apache HTTP Server", "OpenSSL", "Linux kernel", "Microsoft Windows", "Cisco IOS XE", "Jenkins",
    "WordPress", "GitLab", "Chrome", "Firefox", "PHP", "nginx", "Oracle MySQL", "Adobe Acrobat",
    "Fortinet FortiOS", "Ivanti Connect Secure", "SAP NetWeaver", "VMware vCenter", "Zoom", "Grafana",
]
SOURCES = [
    "cve@mitre.org", "secalert@redhat.com", "security@apache.org", "psirt@cisco.com",
    "secure@microsoft.com", "security@wordfence.com", "cna@vuldb.com", "security-advisories@github.com",
]
STATUSES = ["Analyzed", "Modified", "Awaiting Analysis", "Undergoing Analysis", "Rejected", "Deferred"]
TAGS = [None, None, None, "[]", '[{"sourceIdentifier": "cve@mitre.org", "tags": ["disputed"]}]']


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class Data:
    stored: pd.DataFrame  # the first half, as the table holds it before each method
    batch: pd.DataFrame  # N rows: the first half changed (newer, new description) + the second half
    loop: pd.DataFrame  # LOOP_ROWS rows of the batch, half changed and half new


def _descriptions(rng: np.random.Generator, n: int) -> list[str]:
    products = rng.integers(0, len(PRODUCTS), n)
    lengths = rng.integers(200, 401, n)
    words = rng.integers(0, len(WORDS), (n, 70))
    out = []
    for i in range(n):
        text = PRODUCTS[products[i]] + " " + " ".join(WORDS[w] for w in words[i])
        out.append(text[: lengths[i]].rstrip() + ".")
    return out


def make_data(n: int, seed: int = 20240601) -> Data:
    """N unique CVE rows (realistic ids and shapes), stored and changed versions of the first half."""
    rng = np.random.default_rng(seed)
    per_year = 80_000
    slots = rng.choice(27 * per_year, n, replace=False)
    years = 1999 + slots // per_year
    numbers = slots % per_year + 1
    cve_id = "CVE-" + pd.Series(years).astype(str) + "-" + pd.Series(numbers).astype(str).str.zfill(4)
    published = pd.Timestamp("1999-01-01", tz="UTC") + pd.to_timedelta(
        (years - 1999) * 365 * 86_400 + rng.integers(0, 365 * 86_400, n), unit="s"
    )
    last_modified = published + pd.to_timedelta(rng.integers(0, 400 * 86_400, n), unit="s")
    kev = rng.random(n) < 0.01
    exploit_add = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    exploit_add[kev] = pd.Timestamp("2021-11-03") + pd.to_timedelta(rng.integers(0, 1200, kev.sum()), unit="D")
    frame = pd.DataFrame(
        {
            "cve_id": cve_id,
            "cve_key": pd.array(years.astype(np.int64) * 10**10 + numbers, dtype="Int64"),
            "source_identifier": np.array(SOURCES, dtype=object)[rng.integers(0, len(SOURCES), n)],
            "description": _descriptions(rng, n),
            "published": published,
            "last_modified": last_modified,
            "vuln_status": np.array(STATUSES, dtype=object)[rng.integers(0, len(STATUSES), n)],
            "cisa_exploit_add": exploit_add,
            "cisa_action_due": exploit_add + pd.Timedelta(days=21),
            "cisa_required_action": np.where(kev, "Apply mitigations per vendor instructions or discontinue use of the product if mitigations are unavailable.", None),
            "cisa_vulnerability_name": np.where(kev, "Vendor Product Remote Code Execution Vulnerability", None),
            "cve_tags": np.array(TAGS, dtype=object)[rng.integers(0, len(TAGS), n)],
        }
    )
    # The dtypes of the typed layer the pipeline merges from (CveModel): Arrow-backed text.
    text = [c for c in frame.columns if frame[c].dtype == object]
    frame = frame.astype({c: pd.StringDtype("pyarrow") for c in text})
    CveModel.validate(frame)
    half = n // 2
    stored = frame.iloc[:half].reset_index(drop=True)
    changed = stored.copy()
    changed["last_modified"] = changed["last_modified"] + pd.to_timedelta(rng.integers(3_600, 300 * 86_400, half), unit="s")
    changed["description"] = changed["description"] + " Updated: fixed in " + pd.Series(
        rng.integers(1, 30, half)
    ).astype(str) + "." + pd.Series(rng.integers(0, 10, half)).astype(str) + "."
    new = frame.iloc[half:].reset_index(drop=True)
    order = rng.permutation(n)
    batch = pd.concat([changed, new], ignore_index=True).iloc[order].reset_index(drop=True)
    loop = min(LOOP_ROWS, n)
    loop_rows = pd.concat([changed.iloc[: loop // 2], new.iloc[: loop - loop // 2]], ignore_index=True)
    return Data(stored=stored, batch=batch, loop=loop_rows)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The fastest CSV found: pyarrow, with zoned timestamps formatted as UTC text.

    pyarrow formats `timestamp[tz=...]` values through a time-zone lookup per value (~2 s for
    400k values here); Arrow stores them as UTC instants, so formatting them as naive
    timestamps and appending "+00" gives the same instants about ten times faster.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for index, field_ in enumerate(table.schema):
        if pa.types.is_timestamp(field_.type) and field_.type.tz is not None:
            text = table.column(index).cast(pa.int64()).cast(pa.timestamp(field_.type.unit)).cast(pa.string())
            table = table.set_column(index, field_.name, pc.binary_join_element_wise(text, "+00", ""))
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, CSV_OPTIONS)
    return buffer.getvalue()


def pgpq_installed() -> bool:
    try:
        import pgpq  # noqa: F401
    except ImportError:
        return False
    return True


def binary_copy_chunks(frame: pd.DataFrame) -> list[bytes]:
    """COPY BINARY payload encoded from Arrow by pgpq (an optional package)."""
    from pgpq import ArrowToPostgresBinaryEncoder

    table = pa.Table.from_pandas(frame, preserve_index=False)
    for index, field_ in enumerate(table.schema):
        if pa.types.is_null(field_.type):
            table = table.set_column(index, field_.name, table.column(index).cast(pa.string()))
        elif isinstance(CVE.c[field_.name].type, sa.Date):
            table = table.set_column(index, field_.name, table.column(index).cast(pa.date32()))
        elif pa.types.is_timestamp(field_.type):
            table = table.set_column(
                index, field_.name, table.column(index).cast(pa.timestamp("us", tz=field_.type.tz), safe=False)
            )
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    chunks = [encoder.write_header()]
    chunks.extend(encoder.write_batch(batch) for batch in table.to_batches(max_chunksize=50_000))
    chunks.append(encoder.finish())
    return chunks


# --------------------------------------------------------------------------------------------
# Database helpers


class Database:
    """A fresh database on the server of the admin URL, dropped by `drop()`."""

    def __init__(self, admin_url: str, name: str):
        admin = sa.make_url(admin_url)
        self.name = name
        self.admin_dsn = _libpq(admin)
        self.url = admin.set(database=name).render_as_string(hide_password=False)
        self.dsn = _libpq(admin.set(database=name))
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def drop(self) -> None:
        dispose_engines()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))


def _libpq(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def copy_csv(conn: psycopg.Connection, table: sql.Composable, data: bytes) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT CSV)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with conn.cursor().copy(statement) as copy:
        copy.write(data)


def reset_target(db: Database, stored_csv: bytes, table: sql.Composable = sql.Identifier("cve")) -> None:
    """Untimed: the table holds exactly the stored first half, vacuumed and analysed."""
    with db.connect() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(table))
        with conn.transaction():
            copy_csv(conn, table, stored_csv)
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
        conn.execute("CHECKPOINT")


def fingerprint(db: Database, table: sql.Composable = sql.Identifier("cve")) -> tuple[int, str]:
    query = sql.SQL(
        "SELECT count(*), md5(string_agg(cve_id || '|' || last_modified::text || '|' || coalesce(description, ''), "
        "E'\\n' ORDER BY cve_id)) FROM {}"
    ).format(table)
    with db.connect() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute(query).fetchone()


def checkpoint(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("CHECKPOINT")


# --------------------------------------------------------------------------------------------
# Methods: each returns the seconds of one timed run (the reset before it is not timed)


def run_platform(db: Database, data: Data) -> float:
    engine = engine_for(db.url)
    with engine.connect() as warm:  # the pool holds an open connection before timing
        warm.execute(sa.text("SELECT 1"))
    start = time.perf_counter()
    with engine.begin() as connection:
        result = merge(connection, CVE, data.batch)
    seconds = time.perf_counter() - start
    run_platform.last_result = result  # type: ignore[attr-defined]
    return seconds


def run_pandas(db: Database, data: Data) -> float:
    engine = engine_for(db.url)
    stage = sa.Table("cve_stage_pandas", sa.MetaData(), *(sa.Column(c.name, c.type) for c in CVE.columns))
    statement = postgresql.insert(CVE).from_select(COLUMNS, sa.select(*stage.c))
    excluded = statement.excluded
    values = [c for c in COLUMNS if c != "cve_id"]
    statement = statement.on_conflict_do_update(
        index_elements=["cve_id"],
        set_={c: excluded[c] for c in values},
        where=sa.and_(
            CVE.c.last_modified <= excluded.last_modified,
            sa.tuple_(*(CVE.c[c] for c in values)).is_distinct_from(sa.tuple_(*(excluded[c] for c in values))),
        ),
    )
    with engine.connect() as warm:
        warm.execute(sa.text("SELECT 1"))
    start = time.perf_counter()
    with engine.begin() as connection:
        # method=None: SQLAlchemy 2's "insertmanyvalues" batches (faster here than method="multi").
        data.batch.to_sql(stage.name, connection, if_exists="replace", index=False, chunksize=20_000)
        connection.execute(statement)
        stage.drop(connection)
    return time.perf_counter() - start


def run_loop(db: Database, data: Data) -> float:
    rows = data.loop.astype(object).where(data.loop.notna(), None)
    records = list(rows.itertuples(index=False, name=None))
    key_index = COLUMNS.index("cve_id")
    version_index = COLUMNS.index("last_modified")
    select = sql.SQL("SELECT last_modified FROM cve WHERE cve_id = %s")
    update = sql.SQL("UPDATE cve SET {} WHERE cve_id = %s").format(
        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in COLUMNS if c != "cve_id")
    )
    insert = sql.SQL("INSERT INTO cve ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS))
    )
    with psycopg.connect(db.dsn) as conn:
        cursor = conn.cursor()
        start = time.perf_counter()
        for record in records:
            cursor.execute(select, (record[key_index],))
            found = cursor.fetchone()
            if found is None:
                cursor.execute(insert, record)
            elif found[0] < record[version_index]:
                values = [v for i, v in enumerate(record) if i != key_index]
                cursor.execute(update, (*values, record[key_index]))
        conn.commit()
        return time.perf_counter() - start


def run_dlt(db: Database, data: Data, file_format: str, indexed: bool, rep: int, workdir: str) -> float:
    import dlt

    stored, batch = _arrow_for_dlt(data.stored), _arrow_for_dlt(data.batch)
    url = sa.make_url(db.url)
    if url.password is None:  # dlt insists on a password; a trust-auth server ignores it
        url = url.set(password="unused")
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{_dlt_dataset(file_format, indexed, rep)}",
        pipelines_dir=workdir,
        destination=dlt.destinations.postgres(credentials=_libpq(url)),
        dataset_name=_dlt_dataset(file_format, indexed, rep),
    )
    options = dict(table_name="cve", write_disposition="merge", primary_key="cve_id", loader_file_format=file_format)
    pipeline.run(stored, **options)  # untimed: the table holds the first half, loaded by dlt itself
    target = sql.Identifier(_dlt_dataset(file_format, indexed, rep), "cve")
    with db.connect() as conn:
        if indexed:  # dlt creates no index: give its table those of `cve`, for a like-for-like merge
            conn.execute(sql.SQL('ALTER TABLE {} ALTER COLUMN cve_id TYPE text COLLATE "C"').format(target))
            conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (cve_id)").format(target))
            conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (cve_key)").format(target))
            conn.execute(sql.SQL("CREATE INDEX ON {} (last_modified)").format(target))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(target))
    checkpoint(db)
    start = time.perf_counter()
    pipeline.run(batch, **options)
    return time.perf_counter() - start


def _dlt_dataset(file_format: str, indexed: bool, rep: int) -> str:
    return f"dlt_{file_format}_{'indexed' if indexed else 'bare'}_{rep}"


def _arrow_for_dlt(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in ("cisa_exploit_add", "cisa_action_due"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table.column(name).cast(pa.date32()))
    return table


def drop_dlt_datasets(db: Database, file_format: str, indexed: bool, rep: int) -> None:
    dataset = _dlt_dataset(file_format, indexed, rep)
    with db.connect() as conn:
        for schema in (dataset, dataset + "_staging"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


CEILING = sql.Identifier("cve_ceiling")


def run_ceiling_csv(db: Database, data: Data) -> float:
    """COPY CSV, serialised from the frame inside the timing (what any method must do)."""
    with db.connect() as conn:
        start = time.perf_counter()
        payload = csv_bytes(data.batch)
        with conn.transaction():
            copy_csv(conn, CEILING, payload)
        return time.perf_counter() - start


def run_ceiling_binary(db: Database, data: Data) -> float:
    """COPY BINARY, encoded from Arrow by pgpq inside the timing."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        CEILING, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with db.connect() as conn:
        start = time.perf_counter()
        chunks = binary_copy_chunks(data.batch)
        with conn.transaction(), conn.cursor().copy(statement) as copy:
            for chunk in chunks:
                copy.write(chunk)
        return time.perf_counter() - start


def run_ceiling_bytes(db: Database, data: Data, payload: bytes) -> float:
    """COPY CSV of bytes already serialised: the server's share alone (information only)."""
    with db.connect() as conn:
        start = time.perf_counter()
        with conn.transaction():
            copy_csv(conn, CEILING, payload)
        return time.perf_counter() - start


def reset_ceiling(db: Database) -> None:
    with db.connect() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(CEILING))
        conn.execute("CHECKPOINT")


# --------------------------------------------------------------------------------------------
# Running and reporting


@dataclass
class Figure:
    name: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def best_of(reps: int, reset: Callable[[], None], run: Callable[[], float], after: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(reps):
        reset()
        times.append(run())
        if after:
            after()
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the upserted batch (default 200000)")
    parser.add_argument("--pg-url", default=DEFAULT_ADMIN_URL, help="admin URL of the Postgres server")
    parser.add_argument("--skip-dlt", action="store_true", help="do not run dlt's merge")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the cheap methods (best is kept)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    n = args.rows

    print(f"generating {n:,} CVE rows ...", flush=True)
    data = make_data(n)
    stored_csv = csv_bytes(data.stored)
    db = Database(args.pg_url, f"bench_upsert_{os.getpid()}")
    workdir = tempfile.mkdtemp(prefix="bench_dlt_")
    figures: dict[str, Figure] = {}
    try:
        with psycopg.connect(db.admin_dsn) as conn:
            print("server:", conn.execute("SELECT version()").fetchone()[0].split(" on ")[0], flush=True)
        CVE.create(engine_for(db.url))
        with db.connect() as conn:
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE cve)").format(CEILING))

        expected = None

        def verify(name: str) -> Callable[[], None]:
            def check() -> None:
                nonlocal expected
                got = fingerprint(db)
                expected = expected or got
                if got != expected or got[0] != n:
                    raise SystemExit(f"{name}: table state {got} differs from expected {expected}")
            return check

        reset = lambda: reset_target(db, stored_csv)  # noqa: E731

        print("1. platform merge ...", flush=True)
        seconds = best_of(args.reps, reset, lambda: run_platform(db, data), verify("platform merge"))
        r = run_platform.last_result  # type: ignore[attr-defined]
        figures["platform"] = Figure("platform merge (etl_platform.lib.upsert)", n, seconds,
                                     f"inserted {r.inserted:,}, updated {r.updated:,}, unchanged {r.unchanged:,}")

        print("2. pandas to_sql + ON CONFLICT ...", flush=True)
        seconds = best_of(min(args.reps, 2), reset, lambda: run_pandas(db, data), verify("pandas"))
        figures["pandas"] = Figure("pandas to_sql stage + INSERT ON CONFLICT", n, seconds)

        if not args.skip_dlt:
            for file_format, indexed in DLT_RUNS:
                label = f"dlt merge, {file_format}, {'cve indexes' if indexed else 'no index'}"
                print(f"3. {label} ...", flush=True)
                times = []
                for rep in range(2):
                    times.append(run_dlt(db, data, file_format, indexed, rep, workdir))
                    got = fingerprint(db, sql.Identifier(_dlt_dataset(file_format, indexed, rep), "cve"))
                    if got != expected:
                        raise SystemExit(f"{label}: table state {got} differs from expected {expected}")
                    drop_dlt_datasets(db, file_format, indexed, rep)
                figures[f"dlt_{file_format}_{'indexed' if indexed else 'bare'}"] = Figure(label, n, min(times))

        print(f"4. row loop on {len(data.loop):,} rows ...", flush=True)
        reset()
        seconds = run_loop(db, data)
        figures["loop"] = Figure("SELECT then INSERT/UPDATE per row", len(data.loop), seconds)

        print("5. ceiling: raw COPY into an empty unindexed table ...", flush=True)
        payload = csv_bytes(data.batch)
        resetc = lambda: reset_ceiling(db)  # noqa: E731
        figures["ceiling_csv"] = Figure("COPY CSV (pyarrow, from the frame)", n,
                                        best_of(args.reps, resetc, lambda: run_ceiling_csv(db, data)))
        if pgpq_installed():
            figures["ceiling_binary"] = Figure("COPY BINARY (pgpq, from the frame)", n,
                                               best_of(args.reps, resetc, lambda: run_ceiling_binary(db, data)))
        else:
            print("   (pgpq is not installed: no binary COPY ceiling; `pip install pgpq` adds it)")
        figures["ceiling_bytes"] = Figure("COPY CSV, bytes pre-serialised (server only)", n,
                                          best_of(args.reps, resetc, lambda: run_ceiling_bytes(db, data, payload)))
    finally:
        db.drop()
        shutil.rmtree(workdir, ignore_errors=True)

    report(figures, n, args.skip_dlt)
    return 0


def report(figures: dict[str, Figure], n: int, skip_dlt: bool) -> None:
    ceiling_key = max((k for k in ("ceiling_csv", "ceiling_binary") if k in figures), key=lambda k: figures[k].rate)
    ceiling = figures[ceiling_key]
    print()
    print(f"{n:,} rows; ceiling = {ceiling.name}")
    print(f"{'method':<46} {'rows':>8} {'seconds':>9} {'rows/s':>10} {'x ceiling':>10}")
    for key, fig in figures.items():
        mark = "  <- ceiling" if key == ceiling_key else ""
        print(f"{fig.name:<46} {fig.rows:>8,} {fig.seconds:>9.3f} {fig.rate:>10,.0f} {fig.rate / ceiling.rate:>10.3f}{mark}")
        if fig.note:
            print(f"{'':<4}{fig.note}")

    platform = figures["platform"].rate
    print()
    print(f"platform merge vs pandas to_sql + ON CONFLICT: {platform / figures['pandas'].rate:.2f}x")
    checks = [("ceiling", "ceiling", platform / ceiling.rate, ceiling.name)]
    if not skip_dlt:
        same = max((k for k in figures if k.startswith("dlt_") and k.endswith("_indexed")), key=lambda k: figures[k].rate)
        checks.append(("dlt", "dlt", platform / figures[same].rate, figures[same].name + " (like for like)"))
        if "dlt_csv_bare" in figures:
            checks.append(("dlt", "dlt", platform / figures["dlt_csv_bare"].rate, figures["dlt_csv_bare"].name))
    checks.append(("loop", "row loop", platform / figures["loop"].rate, "rows/s against rows/s"))
    print()
    print("targets (platform merge rows/s against ...)")
    for key, label, value, against in checks:
        target = TARGETS[key]
        verdict = "PASS" if value >= target else "MISS"
        print(f"  >= {target:>5g}x {label:<9} measured {value:6.2f}x  {verdict}   [{against}]")


if __name__ == "__main__":
    sys.exit(main())
