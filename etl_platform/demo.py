"""The README's first command: run the main job on embedded defaults and show where results are.

Starts the NVD stand-in on loopback (serving the shipped real records), materializes one day
of the `cve` group into local files and the SQLite warehouse under `ETL_HOME`, and records the
run in `DAGSTER_HOME` so that `dagster dev` shows it afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys

import sqlalchemy as sa

from etl_platform.lib import settings
from etl_platform.lib.storage import storage_root

SAMPLE_DAY = "2023-10-18"  # the day the shipped NVD records were last modified


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", default=SAMPLE_DAY, help=f"day to materialize (default {SAMPLE_DAY})")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(settings.etl_home() / "dagster"))
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    from dagster import DagsterInstance

    from etl_platform.definitions import defs
    from etl_platform.devservers import NvdStandIn
    from etl_platform.lib.warehouse import engine_for

    with NvdStandIn() as nvd:
        os.environ.setdefault("NVD_API_URL", nvd.url)
        print(f"NVD stand-in at {nvd.url}; materializing group cve, partition {args.partition} ...")
        result = defs.get_job_def("cve_daily").execute_in_process(
            partition_key=args.partition,
            instance=DagsterInstance.get(),
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            raise_on_error=False,
        )
    if not result.success:
        print("The run failed; see the step errors above.", file=sys.stderr)
        return 1

    url = settings.warehouse_url()
    engine = engine_for(url)
    print(f"\nWarehouse {url}")
    with engine.connect() as connection:
        for table in ("cve", "cve_metric", "cve_weakness", "cve_reference", "cve_cpe_match", "cve_change"):
            count = connection.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
            print(f"  {table:<15} {count:>6} rows")
    print(f"Files under {storage_root()}:")
    for layer in ("raw", "clean", "diff"):
        print(f"  cve/{layer}/...  ({sum(1 for _ in (storage_root() / 'cve' / layer).rglob('*.*'))} files)")
    print(
        "\nNext:\n"
        "  make dev    # Dagster UI on http://127.0.0.1:3000 (this run is in its history)\n"
        "  make api    # REST API on http://127.0.0.1:8000/docs, e.g. /api/v1/cves?severity=HIGH\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
