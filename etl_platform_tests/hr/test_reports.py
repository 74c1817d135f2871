"""The hiring reports: on the real challenge data against an independent pandas computation,
and on small hand-made cases for the rules (UTC quarters, the mean over hiring departments)."""

from __future__ import annotations

import base64
import re

import pandas as pd
from dagster import RunRequest, evaluate_automation_conditions

from etl_platform.defs.hr.keys import REPORT_KEYS, TABLE_KEYS
from etl_platform.defs.hr.reports import departments_above_mean, hires_by_quarter
from etl_platform_tests.hr.conftest import expected_departments_above_mean, expected_hires_by_quarter, land_samples
from etl_platform_tests.runs import materialized
from etl_platform_tests.stored import count, row_dicts

YEARS = (2021, 2022)


def load(migration, landing, url: str):
    """Migrate the challenge files (tables and reports) into a fresh warehouse."""
    land_samples(landing)
    hr = migration(url)
    return hr, hr.tick_and_run()


def stored_hires_by_quarter(url: str, year: int) -> list[dict]:
    found = row_dicts(url, "SELECT department, job, q1, q2, q3, q4 FROM report_hires_by_quarter WHERE year = :y", y=year)
    return sorted(found, key=lambda row: (row["department"], row["job"]))


def stored_departments_above_mean(url: str, year: int) -> list[dict]:
    return row_dicts(
        url,
        "SELECT id, department, hired FROM report_departments_above_mean WHERE year = :y ORDER BY hired DESC, id",
        y=year,
    )


def test_reports_match_an_independent_computation_on_the_challenge_data(migration, landing, any_warehouse_url):
    load(migration, landing, any_warehouse_url)

    for year in YEARS:
        assert stored_hires_by_quarter(any_warehouse_url, year) == expected_hires_by_quarter(year)
        assert stored_departments_above_mean(any_warehouse_url, year) == expected_departments_above_mean(year)
    # The 2021 figures, spelled out.
    assert [(r["department"], r["hired"]) for r in stored_departments_above_mean(any_warehouse_url, 2021)] == [
        ("Support", 216),
        ("Engineering", 205),
        ("Human Resources", 201),
        ("Services", 200),
        ("Business Development", 185),
        ("Research and Development", 148),
        ("Marketing", 142),
    ]
    total = row_dicts(any_warehouse_url, "SELECT sum(q1 + q2 + q3 + q4) AS n FROM report_hires_by_quarter WHERE year = 2021")
    assert total == [{"n": 1643}]


def test_each_report_materialization_carries_a_chart_and_its_rows(migration, landing, postgres_url):
    _, result = load(migration, landing, postgres_url)
    metadata = materialized(result)

    for key in ("hr/reports/hires_by_quarter", "hr/reports/departments_above_mean"):
        chart = metadata[key]["chart"]
        encoded = re.fullmatch(r"!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", chart).group(1)
        assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")
        assert metadata[key]["rows"].startswith("|")
    assert metadata["hr/reports/departments_above_mean"]["dagster/row_count"] == sum(
        len(expected_departments_above_mean(year)) for year in YEARS
    )
    assert "| Support" in metadata["hr/reports/departments_above_mean"]["rows"]
    assert metadata["hr/reports/hires_by_quarter"]["rows_by_year"] == {
        str(year): len(expected_hires_by_quarter(year)) for year in YEARS
    }


def test_a_report_is_replaced_whole_when_the_tables_change(migration, landing, postgres_url):
    url = postgres_url
    hr, _ = load(migration, landing, url)
    before = count(url, "report_hires_by_quarter")
    # Every 2022 hire of the file moves to another job: the old (department, job) rows go.
    moved = []
    for line in (landing / "hired_employees.csv").read_text().splitlines():
        fields = line.split(",")
        if fields[2].startswith("2022-") and all(fields):
            fields[4] = "1"
        moved.append(",".join(fields))
    (landing / "hired_employees.csv").write_text("\n".join(moved) + "\n")

    hr.tick_and_run()

    jobs_2022 = row_dicts(url, "SELECT DISTINCT job FROM report_hires_by_quarter WHERE year = 2022")
    assert jobs_2022 == [{"job": "Marketing Assistant"}]
    assert count(url, "report_hires_by_quarter") == before - len(expected_hires_by_quarter(2022)) + 12
    assert stored_hires_by_quarter(url, 2021) == expected_hires_by_quarter(2021)


def test_the_reports_are_requested_when_a_table_changes(migration, landing, sqlite_url):
    land_samples(landing)
    hr = migration(sqlite_url)
    request = hr.tick().run_requests[0]
    before = evaluate_automation_conditions(defs=hr.definitions, instance=hr.instance)
    assert before.total_requested == 0
    assert hr.run(RunRequest(run_config=request.run_config, asset_selection=list(TABLE_KEYS.values()))).success

    evaluation = evaluate_automation_conditions(defs=hr.definitions, instance=hr.instance, cursor=before.cursor)

    requested = {key for key in REPORT_KEYS.values() if evaluation.get_num_requested(key)}
    assert requested == set(REPORT_KEYS.values())


# --- the rules, on hand-made hires -----------------------------------------------------

def _hires(*hires: tuple[str, int, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(hires, columns=["datetime", "department_id", "department", "job"])
    frame["job_id"] = frame["job"].map({job: i for i, job in enumerate(sorted(set(frame["job"])), 1)})
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True, format="ISO8601")
    return frame


def test_quarters_are_counted_by_the_utc_hire_date():
    hires = _hires(
        ("2021-03-31T23:30:00-02:00", 1, "Sales", "Clerk"),  # 2021-04-01 01:30 UTC: Q2
        ("2021-03-31T22:00:00Z", 1, "Sales", "Clerk"),  # Q1
        ("2021-12-31T23:59:59Z", 1, "Sales", "Clerk"),  # Q4
        ("2022-01-01T00:30:00+01:00", 1, "Sales", "Clerk"),  # 2021-12-31 23:30 UTC: Q4 of 2021
        ("2021-07-01T00:00:00Z", 2, "Legal", "Agent"),  # Q3
    )

    report = hires_by_quarter(hires)

    assert report.to_dict("records") == [
        {"year": 2021, "department": "Legal", "job": "Agent", "q1": 0, "q2": 0, "q3": 1, "q4": 0},
        {"year": 2021, "department": "Sales", "job": "Clerk", "q1": 1, "q2": 1, "q3": 0, "q4": 2},
    ]


def test_the_mean_is_over_the_departments_that_hired_that_year():
    hires = _hires(
        *[("2021-02-01T00:00:00Z", 1, "A", "x")] * 6,
        *[("2021-02-01T00:00:00Z", 2, "B", "x")] * 3,
        *[("2021-02-01T00:00:00Z", 3, "C", "x")] * 3,
        # Department 4 hires only in 2022: it does not pull the 2021 mean down.
        *[("2022-02-01T00:00:00Z", 4, "D", "x")] * 2,
        *[("2022-02-01T00:00:00Z", 2, "B", "x")] * 1,
    )

    report = departments_above_mean(hires)

    # 2021: mean 4 over A, B, C -> only A. 2022: mean 1.5 over D, B -> D.
    assert report.to_dict("records") == [
        {"year": 2021, "id": 1, "department": "A", "hired": 6},
        {"year": 2022, "id": 4, "department": "D", "hired": 2},
    ]


def test_no_hires_make_empty_reports():
    empty = _hires()

    assert hires_by_quarter(empty).empty
    assert list(departments_above_mean(empty).columns) == ["year", "id", "department", "hired"]


def test_rows_written_through_the_api_make_the_sensor_refresh_the_reports(postgres_url, etl_env, monkeypatch):
    import sqlalchemy as sa
    from dagster import build_sensor_context

    from etl_platform.defs.hr import tables as hr_tables
    from etl_platform.defs.hr.sensors import hr_api_writes_sensor
    from etl_platform.lib.warehouse import WarehouseResource, engine_for

    warehouse = WarehouseResource(url=postgres_url)
    first = hr_api_writes_sensor(build_sensor_context(), warehouse=warehouse)
    with engine_for(postgres_url).begin() as connection:
        connection.execute(sa.insert(hr_tables.departments), [{"id": 1, "department": "Sales"}])

    second = hr_api_writes_sensor(build_sensor_context(cursor=first.cursor), warehouse=warehouse)
    third = hr_api_writes_sensor(build_sensor_context(cursor=second.cursor), warehouse=warehouse)

    assert not first.run_requests
    assert len(second.run_requests) == 1
    assert not third.run_requests
