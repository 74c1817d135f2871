"""Benchmark: the generic upsert on flattened Hotmart sales, against a row loop and dlt's merge.

Prints figures; it is not a test. The same batch of N flattened sale rows, made by mutating the
recorded Hotmart records (samples/hotmart_sales: the documentation example and the live record)
and typed by the pipeline's own `typed_sales` (decimals, UTC timestamps, Arrow text), is upserted
into a `sale` table already holding the first half, with

1. the platform's `etl_platform.lib.upsert.merge(..., evolve_schema=True)` exactly as the
   `sales/tables/sale` asset calls it: schema evolution included (the table is inspected on
   every run), amounts handed over as Arrow decimals (`arrow_decimals`, timed too);
2. dlt's merge (`write_disposition="merge"`, primary key purchase_transaction, arrow input,
   postgres destination), with `loader_file_format` "insert_values" (its default) and "csv";
3. the original system's method: per row SELECT by transaction, then UPDATE or INSERT (timed
   on a sample of the batch, `--loop-rows`, because it is slow; compared in rows/s).

The batch: half the rows are new, half are stored sales whose status changed (APPROVED ->
COMPLETE / REFUNDED / CHARGEBACK...), in random order. Every method starts from the same state
(reset untimed) and must end in the same state, checked with a fingerprint of
(transaction, status, price).

    PYTHONPATH=. python benchmarks/upsert_sales.py [--rows 200000] [--loop-rows 20000] [--skip-dlt]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import sqlalchemy as sa
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upsert_cve import DEFAULT_ADMIN_URL, Database, Figure, _libpq, best_of, checkpoint, csv_bytes  # noqa: E402

from etl_platform.defs.sales import tables  # noqa: E402
from etl_platform.defs.sales.parse import arrow_decimals, flat_sales, typed_sales  # noqa: E402
from etl_platform.defs.sales.schemas import KEY, SaleModel  # noqa: E402
from etl_platform.devservers.hotmart import recorded_items  # noqa: E402
from etl_platform.lib.upsert import merge  # noqa: E402
from etl_platform.lib.warehouse import engine_for  # noqa: E402

TARGETS = {"dlt": 3.0, "loop": 30.0}
DLT_FORMATS = ("insert_values", "csv")
DAY_MS = 86_400_000
START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
NEW_STATUSES = np.array(["COMPLETE", "REFUNDED", "CHARGEBACK", "PARTIALLY_REFUNDED", "CANCELLED"], dtype=object)


def make_batch(n: int, seed: int = 20260411) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(stored first half, the batch of N rows, the stored half before the status change).

    The recorded records are flattened and typed once, then tiled to N rows and mutated column by
    column: unique transaction codes, order dates over a year, approval a few minutes later,
    guarantee 7-30 days, prices (integers as in the live data, or cents), fees derived from
    them, statuses, buyers. The result passes SaleModel like a real run's typed layer.
    """
    rng = np.random.default_rng(seed)
    template, _ = typed_sales(flat_sales(recorded_items()))
    frame = template.iloc[np.arange(n) % len(template)].reset_index(drop=True)
    order = START_MS + np.sort(rng.integers(0, 365 * DAY_MS, n))
    approved = order + rng.integers(0, 600_000, n)
    cents = np.where(rng.random(n) < 0.4, rng.integers(10, 2000, n) * 100, rng.integers(1000, 200_000, n))
    fee_pct = rng.choice([59, 99], n)  # 5.9 % or 9.9 %
    fee_total = cents * fee_pct // 1000 + 100
    text = pd.StringDtype("pyarrow")
    frame = frame.assign(
        purchase_transaction=pd.array([f"HP{13_000_000_000 + i:011d}" for i in rng.permutation(n)], dtype=text),
        purchase_order_date=pd.to_datetime(order, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
        purchase_approved_date=pd.to_datetime(approved, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
        purchase_warranty_expire_date=pd.to_datetime(
            approved + rng.choice([7, 14, 30], n) * DAY_MS, unit="ms", utc=True
        ).astype("datetime64[ns, UTC]"),
        purchase_price_value=_money(cents),
        purchase_hotmart_fee_total=_money(fee_total),
        purchase_hotmart_fee_base=_money(cents),
        purchase_hotmart_fee_percentage=pd.Series([Decimal(int(p)).scaleb(-1) for p in fee_pct], dtype=object),
        purchase_status=pd.array(np.where(rng.random(n) < 0.8, "APPROVED", "WAITING_PAYMENT"), dtype=text),
        purchase_recurrency_number=pd.array(np.where(rng.random(n) < 0.3, rng.integers(1, 13, n), 0), dtype="Int64"),
        buyer_email=pd.array([f"buyer{i}@example.com" for i in rng.integers(0, n // 2 + 1, n)], dtype=text),
        buyer_ucode=pd.array([f"{i:08x}-0000-4000-8000-{i:012x}" for i in rng.integers(0, 2**32, n)], dtype=text),
        product_id=pd.array(rng.integers(1_000_000, 5_000_000, n), dtype="Int64"),
    )
    SaleModel.validate(frame)
    half = n // 2
    stored = frame.iloc[:half].reset_index(drop=True)
    changed = stored.copy()
    changed["purchase_status"] = pd.array(NEW_STATUSES[rng.integers(0, len(NEW_STATUSES), half)], dtype=text)
    batch = pd.concat([changed, frame.iloc[half:]], ignore_index=True).iloc[rng.permutation(n)].reset_index(drop=True)
    return stored, batch, changed


def _money(cents: np.ndarray) -> pd.Series:
    return pd.Series([Decimal(int(c)).scaleb(-2) for c in cents], dtype=object)


# --------------------------------------------------------------------------------------------
# State


def create_table(db: Database, stored: pd.DataFrame) -> None:
    with engine_for(db.url).begin() as connection:
        merge(connection, tables.sale, stored.iloc[:0], evolve_schema=True)


def reset(db: Database, stored_csv: bytes, columns: list[str], table: sql.Composable = sql.Identifier("sale")) -> None:
    with db.connect() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(table))
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT CSV)").format(
            table, sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with conn.transaction(), conn.cursor().copy(statement) as copy:
            copy.write(stored_csv)
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
        conn.execute("CHECKPOINT")


def fingerprint(db: Database, table: sql.Composable = sql.Identifier("sale")) -> tuple[int, str]:
    query = sql.SQL(
        "SELECT count(*), md5(string_agg(purchase_transaction || '|' || purchase_status || '|' || "
        "trim_scale(purchase_price_value)::text, E'\\n' ORDER BY purchase_transaction)) FROM {}"
    ).format(table)
    with db.connect() as conn:
        return conn.execute(query).fetchone()


# --------------------------------------------------------------------------------------------
# Methods: each returns the seconds of one timed run


def run_platform(db: Database, batch: pd.DataFrame) -> float:
    engine = engine_for(db.url)
    with engine.connect() as warm:
        warm.execute(sa.text("SELECT 1"))
    start = time.perf_counter()
    with engine.begin() as connection:  # as the sales/tables/sale asset does
        result = merge(connection, tables.sale, arrow_decimals(batch), evolve_schema=True)
    seconds = time.perf_counter() - start
    run_platform.last_result = result  # type: ignore[attr-defined]
    return seconds


def run_loop(db: Database, rows: pd.DataFrame) -> float:
    """The original: per row SELECT by key, then UPDATE every column or INSERT."""
    columns = list(rows.columns)
    records = list(rows.astype(object).where(rows.notna(), None).itertuples(index=False, name=None))
    key_index = columns.index(KEY)
    select = sql.SQL("SELECT 1 FROM sale WHERE {} = %s").format(sql.Identifier(KEY))
    update = sql.SQL("UPDATE sale SET {} WHERE {} = %s").format(
        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns if c != KEY),
        sql.Identifier(KEY),
    )
    insert = sql.SQL("INSERT INTO sale ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns))
    )
    with psycopg.connect(db.dsn) as conn:
        cursor = conn.cursor()
        start = time.perf_counter()
        for record in records:
            cursor.execute(select, (record[key_index],))
            if cursor.fetchone() is None:
                cursor.execute(insert, record)
            else:
                cursor.execute(update, (*(v for i, v in enumerate(record) if i != key_index), record[key_index]))
        conn.commit()
        return time.perf_counter() - start


def run_dlt(db: Database, stored: pd.DataFrame, batch: pd.DataFrame, file_format: str, workdir: str) -> float:
    import dlt

    dataset = f"dlt_sales_{file_format}"
    url = sa.make_url(db.url)
    if url.password is None:  # dlt insists on a password; a trust-auth server ignores it
        url = url.set(password="unused")
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{dataset}",
        pipelines_dir=workdir,
        destination=dlt.destinations.postgres(credentials=_libpq(url)),
        dataset_name=dataset,
    )
    options = dict(
        table_name="sale", write_disposition="merge", primary_key=KEY, loader_file_format=file_format
    )
    pipeline.run(pa.Table.from_pandas(stored, preserve_index=False), **options)  # untimed: the first half
    target = sql.Identifier(dataset, "sale")
    with db.connect() as conn:  # like for like: the primary key `sale` has (dlt creates no index)
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(target, sql.Identifier(KEY)))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(target))
    checkpoint(db)
    arrow = pa.Table.from_pandas(batch, preserve_index=False)
    start = time.perf_counter()
    pipeline.run(arrow, **options)
    seconds = time.perf_counter() - start
    got = fingerprint(db, target)
    with db.connect() as conn:
        for schema in (dataset, dataset + "_staging"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    run_dlt.last_fingerprint = got  # type: ignore[attr-defined]
    return seconds


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the upserted batch (default 200000)")
    parser.add_argument("--loop-rows", type=int, default=20_000, help="rows timed for the row loop (default 20000)")
    parser.add_argument("--pg-url", default=DEFAULT_ADMIN_URL, help="admin URL of the Postgres server")
    parser.add_argument("--skip-dlt", action="store_true", help="do not run dlt's merge")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the platform merge (best is kept)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    n = args.rows

    print(f"making {n:,} flattened sale rows from the recorded records ...", flush=True)
    began = time.perf_counter()
    stored, batch, _ = make_batch(n)
    print(f"   {len(batch.columns)} columns, {time.perf_counter() - began:.1f} s", flush=True)
    db = Database(args.pg_url, f"bench_upsert_sales_{os.getpid()}")
    workdir = tempfile.mkdtemp(prefix="bench_dlt_sales_")
    figures: dict[str, Figure] = {}
    try:
        create_table(db, stored)
        columns = list(stored.columns)
        stored_csv = csv_bytes(stored)
        expected = None

        def verify(name: str, got) -> None:
            nonlocal expected
            expected = expected or got
            if got != expected or got[0] != n:
                raise SystemExit(f"{name}: table state {got} differs from expected {expected}")

        resetting = lambda: reset(db, stored_csv, columns)  # noqa: E731

        print("1. platform merge (schema evolution on) ...", flush=True)
        seconds = best_of(args.reps, resetting, lambda: run_platform(db, batch), lambda: verify("platform", fingerprint(db)))
        r = run_platform.last_result  # type: ignore[attr-defined]
        figures["platform"] = Figure(
            "platform merge (lib/upsert, evolve_schema)", n, seconds,
            f"inserted {r.inserted:,}, updated {r.updated:,}, unchanged {r.unchanged:,}",
        )

        if not args.skip_dlt:
            for file_format in DLT_FORMATS:
                print(f"2. dlt merge, {file_format} ...", flush=True)
                seconds = run_dlt(db, stored, batch, file_format, workdir)
                verify(f"dlt {file_format}", run_dlt.last_fingerprint)  # type: ignore[attr-defined]
                figures[f"dlt_{file_format}"] = Figure(f"dlt merge, {file_format}, primary key", n, seconds)

        loop_rows = batch.iloc[: min(args.loop_rows, n)]
        print(f"3. row loop (SELECT, then UPDATE or INSERT) on {len(loop_rows):,} rows ...", flush=True)
        resetting()
        figures["loop"] = Figure("row loop: SELECT then UPDATE/INSERT per row", len(loop_rows), run_loop(db, loop_rows))
    finally:
        db.drop()
        shutil.rmtree(workdir, ignore_errors=True)

    report(figures, n)
    return 0


def report(figures: dict[str, Figure], n: int) -> None:
    print()
    print(f"{n:,} flattened sale rows (half new, half with a changed status)")
    print(f"{'method':<46} {'rows':>8} {'seconds':>9} {'rows/s':>10}")
    for fig in figures.values():
        print(f"{fig.name:<46} {fig.rows:>8,} {fig.seconds:>9.3f} {fig.rate:>10,.0f}")
        if fig.note:
            print(f"{'':<4}{fig.note}")
    platform = figures["platform"].rate
    print()
    print("targets (platform merge rows/s against ...)")
    dlts = [k for k in figures if k.startswith("dlt_")]
    if dlts:
        best = max(dlts, key=lambda k: figures[k].rate)
        for key in dlts:
            ratio = platform / figures[key].rate
            mark = "PASS" if ratio >= TARGETS["dlt"] else "MISS"
            best_mark = "  (dlt's fastest)" if key == best else ""
            print(f"  >= {TARGETS['dlt']:>4g}x {figures[key].name:<34} measured {ratio:6.2f}x  {mark}{best_mark}")
    ratio = platform / figures["loop"].rate
    mark = "PASS" if ratio >= TARGETS["loop"] else "MISS"
    print(f"  >= {TARGETS['loop']:>4g}x {'row loop':<34} measured {ratio:6.2f}x  {mark}")


if __name__ == "__main__":
    sys.exit(main())
