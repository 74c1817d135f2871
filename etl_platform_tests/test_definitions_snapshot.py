"""A snapshot of the whole code location: any change to what a user sees in the UI shows in review.

Assets (group, partitions, kinds, owners, dependencies), checks (blocking or not), jobs, schedules,
sensors and resources are written to `snapshots/definitions.json`. After an intended change,
run `ETL_UPDATE_SNAPSHOTS=1 pytest etl_platform_tests/test_definitions_snapshot.py` and review the
diff of that file with the change. The snapshot is of the default environment: table kinds
name the warehouse `ETL_WAREHOUSE_URL` points at when the definitions are imported, so it is
taken in a fresh interpreter without that variable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from etl_platform.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def partitions(definition) -> str | None:
    if definition is None:
        return None
    first = definition.get_first_partition_key() if hasattr(definition, "get_first_partition_key") else None
    return f"{type(definition).__name__} from {first}"


def snapshot() -> dict:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": partitions(node.partitions_def),
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "automation": str(node.automation_condition.get_label()) if node.automation_condition else None,
        }
    checks = {
        f"{check.asset_key.to_user_string()}:{check.name}": {
            "blocking": graph.get_check_spec(check).blocking,
        }
        for check in sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name))
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(job.name for job in repo.get_all_jobs() if not job.name.startswith("__")),
        "schedules": {
            s.name: {"job": s.job_name, "cron": s.cron_schedule, "timezone": s.execution_timezone}
            for s in sorted(repo.schedule_defs, key=lambda s: s.name)
        },
        "sensors": {
            s.name: {"jobs": sorted(job.name for job in s.jobs) if s.has_jobs else [], "default": s.default_status.value}
            for s in sorted(repo.sensor_defs, key=lambda s: s.name)
        },
        "resources": {name: type(resource).__name__ for name, resource in sorted(defs.resources.items())},
    }


def default_snapshot() -> dict:
    """`snapshot()` as the code location loads where `ETL_WAREHOUSE_URL` is unset (SQLite)."""
    environment = {name: value for name, value in os.environ.items() if name != "ETL_WAREHOUSE_URL"}
    code = f"import json; from {__name__} import snapshot; print(json.dumps(snapshot()))"
    child = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(child.stdout.splitlines()[-1])


def test_the_definitions_match_the_reviewed_snapshot():
    current = default_snapshot()
    if os.environ.get("ETL_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")

    assert current == json.loads(SNAPSHOT.read_text())
