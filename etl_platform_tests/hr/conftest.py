"""The `hr` group against a real warehouse: landing place, sensor ticks, migration runs.

The expectations are computed here with plain pandas from the shipped challenge CSVs, apart
from the platform's code, so that a test compares two independent computations.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, RunRequest, build_sensor_context

import etl_platform
from etl_platform.definitions import build_resources
from etl_platform.defs.hr.definitions import build_resources as hr_resources
from etl_platform.defs.hr.definitions import defs as hr_defs
from etl_platform.defs.hr.sensors import hr_landing_sensor

SAMPLES = Path(etl_platform.__file__).parent / "samples" / "hr_challenge"
FILES = ("departments.csv", "jobs.csv", "hired_employees.csv")
COLUMNS = {
    "departments.csv": ["id", "department"],
    "jobs.csv": ["id", "job"],
    "hired_employees.csv": ["id", "name", "datetime", "department_id", "job_id"],
}
JOB = "hr_migration"


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sample_frame(name: str) -> pd.DataFrame:
    """A challenge CSV as pandas reads it: every field as text, empty fields as NaN."""
    return pd.read_csv(SAMPLES / name, header=None, names=COLUMNS[name], dtype=str, keep_default_na=False).replace(
        "", pd.NA
    )


def expected_rejections() -> Counter:
    """Reason -> rows for the sample hires: the first empty field of a row names the reason."""
    hires = sample_frame("hired_employees.csv")
    incomplete = hires[hires.isna().any(axis=1)]
    return Counter(f"{row.isna().idxmax()} is required" for _, row in incomplete.iterrows())


def expected_hires() -> pd.DataFrame:
    """The complete sample hires with department and job names, year and quarter (UTC)."""
    hires = sample_frame("hired_employees.csv").dropna()
    departments = sample_frame("departments.csv").rename(columns={"id": "department_id"})
    jobs = sample_frame("jobs.csv").rename(columns={"id": "job_id"})
    hires = hires.merge(departments, on="department_id").merge(jobs, on="job_id")
    hired_at = pd.to_datetime(hires["datetime"], utc=True)
    return hires.assign(
        year=hired_at.dt.year, quarter=hired_at.dt.quarter, department_id=hires["department_id"].astype(int)
    )


def expected_hires_by_quarter(year: int) -> list[dict]:
    hires = expected_hires()
    of_year = hires[hires["year"] == year]
    table = of_year.pivot_table(
        index=["department", "job"], columns="quarter", values="id", aggfunc="count", fill_value=0
    )
    table = table.reindex(columns=[1, 2, 3, 4], fill_value=0)
    rows = [
        {"department": department, "job": job, **{f"q{q}": int(counts[q]) for q in (1, 2, 3, 4)}}
        for (department, job), counts in table.iterrows()
    ]
    return sorted(rows, key=lambda row: (row["department"], row["job"]))


def expected_departments_above_mean(year: int) -> list[dict]:
    hires = expected_hires()
    hired = hires[hires["year"] == year].groupby(["department_id", "department"])["id"].count()
    above = hired[hired > hired.mean()]
    rows = [{"id": int(i), "department": name, "hired": int(n)} for (i, name), n in above.items()]
    return sorted(rows, key=lambda row: (-row["hired"], row["id"]))


@pytest.fixture
def landing(tmp_path, etl_env, monkeypatch) -> Path:
    """An empty local landing place, `HR_LANDING_URL` pointed at it."""
    folder = tmp_path / "landing" / "hr"
    folder.mkdir(parents=True)
    monkeypatch.setenv("HR_LANDING_URL", str(folder))
    return folder


def land_samples(folder: Path) -> None:
    for name in FILES:
        shutil.copyfile(SAMPLES / name, folder / name)


@dataclass
class Migration:
    """Sensor ticks and `hr_migration` runs on one instance, as the daemon would do them."""

    instance: DagsterInstance
    definitions: Definitions
    cursor: str | None = None

    def tick(self):
        """Evaluate `hr_landing_sensor` once, keeping its cursor."""
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.definitions,
            resources=self.definitions.resources,
        )
        data = hr_landing_sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data

    def run(self, request: RunRequest | None = None, run_config: dict | None = None) -> ExecuteInProcessResult:
        """Run `hr_migration` as a run request asks (or on its own, with `run_config`)."""
        job = self.definitions.resolve_job_def(JOB)
        result = job.execute_in_process(
            run_config=request.run_config if request else (run_config or {}),
            asset_selection=request.asset_selection if request else None,
            tags=request.tags if request else None,
            instance=self.instance,
            raise_on_error=False,
        )
        return result

    def tick_and_run(self) -> ExecuteInProcessResult:
        requests = self.tick().run_requests
        assert len(requests) == 1, requests
        result = self.run(requests[0])
        assert result.success
        return result


@pytest.fixture
def migration(landing, monkeypatch):
    """A factory: the `hr` definitions on the given warehouse, ticked and run in process."""

    def make(warehouse_url: str, **resources) -> Migration:
        monkeypatch.setenv("ETL_WAREHOUSE_URL", warehouse_url)
        definitions = Definitions(
            assets=hr_defs.assets,
            jobs=hr_defs.jobs,
            sensors=hr_defs.sensors,
            resources=build_resources() | hr_resources() | resources,
        )
        return Migration(DagsterInstance.ephemeral(), definitions)

    return make
