"""The ECB data API / eurofxref history stand-in, exercised over real loopback HTTP."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from etl_platform.devservers import EcbStandIn
from etl_platform.devservers.ecb import Fault

SAMPLES = Path(__file__).resolve().parents[2] / "etl_platform" / "samples" / "ecb"
CSV_SAMPLE = SAMPLES / "EXR_D.USD.EUR.SP00.A_csvdata_lastN720_2025-10-28.csv"
JSON_SAMPLE = SAMPLES / "EXR_D.USD.EUR.SP00.A_jsondata_full_2024-06-03_2024-06-07.json"
HISTORY_SAMPLE = SAMPLES / "eurofxref-hist_2025-05-09.csv"
JUNE_WEEK = {"startPeriod": "2024-06-03", "endPeriod": "2024-06-07"}


def get(ecb: EcbStandIn, timeout: float = 10, headers: dict | None = None, **params) -> requests.Response:
    return requests.get(f"{ecb.url}/EXR/D.USD.EUR.SP00.A", params=params, headers=headers, timeout=timeout)


def csv_rows(response: requests.Response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))


def json_observations(doc: dict) -> dict[str, float | None]:
    times = [v["id"] for v in doc["structure"]["dimensions"]["observation"][0]["values"]]
    observations = doc["dataSets"][0]["series"]["0:0:0:0:0"]["observations"]
    return {times[int(i)]: obs[0] for i, obs in observations.items()}


def test_url_is_the_sdmx_data_base(ecb):
    assert ecb.url.endswith("/service/data")
    assert ecb.series_url == f"{ecb.url}/EXR/D.USD.EUR.SP00.A"


def test_csvdata_without_period_is_the_recorded_bytes(ecb):
    response = get(ecb, format="csvdata")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.content == CSV_SAMPLE.read_bytes()


def test_csvdata_period_filter(ecb):
    response = get(ecb, format="csvdata", **JUNE_WEEK)
    assert response.status_code == 200
    assert response.content.count(b"\r\n") == 6  # header + 5 rows, CRLF as the ECB sends
    rows = csv_rows(response)
    assert [(r["TIME_PERIOD"], r["OBS_VALUE"]) for r in rows] == [
        ("2024-06-03", "1.0842"),
        ("2024-06-04", "1.0865"),
        ("2024-06-05", "1.0872"),
        ("2024-06-06", "1.0865"),
        ("2024-06-07", "1.0898"),
    ]
    assert rows[0]["TITLE_COMPL"] == "ECB reference exchange rate, US dollar/Euro, 2.15 pm (C.E.T.)"


def test_jsondata_period_filter_matches_the_recorded_response(ecb):
    response = get(ecb, format="jsondata", **JUNE_WEEK)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.sdmx.data+json")
    served, recorded = response.json(), json.loads(JSON_SAMPLE.read_bytes())
    for doc in (served, recorded):  # per-response values
        del doc["header"]["id"], doc["header"]["prepared"], doc["dataSets"][0]["validFrom"]
    assert served == recorded


def test_jsondata_other_period_and_time_zone(ecb):
    doc = get(ecb, format="jsondata", startPeriod="2025-01-02", endPeriod="2025-01-03").json()
    assert json_observations(doc) == {"2025-01-02": 1.0321, "2025-01-03": 1.0299}
    first = doc["structure"]["dimensions"]["observation"][0]["values"][0]
    assert first["start"] == "2025-01-02T00:00:00.000+01:00"  # CET in winter, CEST (+02:00) in summer


def test_weekend_period_is_404_no_results(ecb):
    for fmt in ("csvdata", "jsondata"):
        response = get(ecb, format=fmt, startPeriod="2024-06-08", endPeriod="2024-06-09")
        assert response.status_code == 404
        assert response.text == "No results found."


def test_period_outside_the_recording_is_404(ecb):
    assert get(ecb, format="csvdata", startPeriod="2026-01-01").status_code == 404


def test_month_period_and_last_n_observations(ecb):
    june = csv_rows(get(ecb, format="csvdata", startPeriod="2024-06", endPeriod="2024-06"))
    assert june[0]["TIME_PERIOD"] == "2024-06-03" and june[-1]["TIME_PERIOD"] == "2024-06-28"
    last = csv_rows(get(ecb, format="csvdata", lastNObservations=2))
    assert [r["TIME_PERIOD"] for r in last] == ["2025-10-27", "2025-10-28"]


def test_accept_header_selects_the_format(ecb):
    assert get(ecb, headers={"Accept": "text/csv"}, **JUNE_WEEK).text.startswith("KEY,FREQ,")
    assert "dataSets" in get(ecb, headers={"Accept": "application/json"}, **JUNE_WEEK).json()
    assert get(ecb, **JUNE_WEEK).status_code == 406  # SDMX-ML (the ECB default) is not served


def test_bad_period_is_400(ecb):
    assert get(ecb, format="csvdata", startPeriod="yesterday").status_code == 400


def test_blank_holiday_observation(ecb):
    ecb.blank_observation("2024-06-05")
    ecb.blank_observation("2024-06-06", "NaN")
    rows = csv_rows(get(ecb, format="csvdata", **JUNE_WEEK))
    assert [r["OBS_VALUE"] for r in rows] == ["1.0842", "1.0865", "", "NaN", "1.0898"]
    doc = get(ecb, format="jsondata", **JUNE_WEEK).json()
    assert json_observations(doc) == {
        "2024-06-03": 1.0842,
        "2024-06-04": 1.0865,
        "2024-06-05": None,
        "2024-06-06": None,
        "2024-06-07": 1.0898,
    }


def test_blanking_a_missing_day_adds_an_empty_row(ecb):
    ecb.blank_observation("2024-06-08")  # a Saturday the recording leaves out
    rows = csv_rows(get(ecb, format="csvdata", startPeriod="2024-06-07", endPeriod="2024-06-10"))
    assert [(r["TIME_PERIOD"], r["OBS_VALUE"]) for r in rows] == [
        ("2024-06-07", "1.0898"),
        ("2024-06-08", ""),
        ("2024-06-10", "1.0756"),
    ]


def test_history_zip_holds_the_recorded_csv(ecb):
    assert ecb.history_url.endswith("/stats/eurofxref/eurofxref-hist.zip")
    response = requests.get(ecb.history_url, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["eurofxref-hist.csv"]
        data = archive.read("eurofxref-hist.csv")
    assert data == HISTORY_SAMPLE.read_bytes()
    lines = data.decode().splitlines()
    assert lines[0].startswith("Date,USD,JPY,") and lines[1].startswith("2025-05-09,1.1252,")


def test_set_history_csv(ecb):
    ecb.set_history_csv(b"Date,USD,\n2025-05-12,1.11,\n")
    with zipfile.ZipFile(io.BytesIO(requests.get(ecb.history_url, timeout=10).content)) as archive:
        assert archive.read("eurofxref-hist.csv") == b"Date,USD,\n2025-05-12,1.11,\n"


def test_unknown_series_is_404(ecb):
    response = requests.get(f"{ecb.url}/EXR/D.GBP.EUR.SP00.A", params={"format": "csvdata"}, timeout=10)
    assert response.status_code == 404 and response.text == "No results found."


def test_requests_log_and_fault(ecb):
    ecb.inject(Fault.status(500), path="/EXR")
    assert get(ecb, format="csvdata", **JUNE_WEEK).status_code == 500
    assert get(ecb, format="csvdata", **JUNE_WEEK).status_code == 200
    assert [r["params"] for r in ecb.requests] == [{"format": "csvdata", **JUNE_WEEK}] * 2
    assert ecb.requests[0]["path"] == "/service/data/EXR/D.USD.EUR.SP00.A"


def test_truncated_fault(ecb):
    ecb.inject(Fault.truncated())
    full = CSV_SAMPLE.read_bytes()
    response = get(ecb, format="csvdata")
    assert response.content == full[: len(full) // 2]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_cut_short_fault_breaks_the_answer_off_then_service_resumes(ecb, chunked):
    ecb.inject(Fault.cut_short(chunked))

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        get(ecb, format="csvdata")
    assert get(ecb, format="csvdata").content == CSV_SAMPLE.read_bytes()


def test_cli_prints_its_url_and_stops_on_ctrl_c():
    repo_root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "etl_platform.devservers", "ecb", "--port", "0"],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://\S+", process.stdout.readline()).group()
        response = requests.get(f"{url}/EXR/D.USD.EUR.SP00.A", params={"format": "csvdata", **JUNE_WEEK}, timeout=10)
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
