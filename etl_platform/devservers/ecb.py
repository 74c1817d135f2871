"""Loopback stand-in for the ECB data API (SDMX REST) and the euro reference-rate history file.

* ``GET {url}/EXR/D.USD.EUR.SP00.A?startPeriod=&endPeriod=&format=csvdata|jsondata``
  (``url`` = ``.../service/data``, as ``https://data-api.ecb.europa.eu/service/data``)
  serves the recorded daily USD/EUR series (720 business days, 2023-01-04 ..
  2025-10-28; see ``etl_platform/samples/ecb/SOURCES.md``). ``csvdata`` rows are
  the recorded CSV rows (CRLF, as sent); ``jsondata`` is SDMX-JSON 1.0 built in
  the shape of the recorded ``jsondata`` response. A period with no
  observation answers 404 with the body ``No results found.``, as the ECB does.
  ``lastNObservations`` and ``detail`` are accepted too; ``Accept: text/csv`` /
  ``application/json`` select the format when ``format`` is absent.
* ``GET {root_url}/stats/eurofxref/eurofxref-hist.zip`` (``history_url``;
  the real one is ``https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip``)
  serves a zip holding ``eurofxref-hist.csv``: the recorded history
  (1999-01-04 .. 2025-05-09, newest first).

:meth:`EcbStandIn.blank_observation` makes one day's OBS_VALUE empty (or
``NaN``), as the ECB sends a day without a rate. Faults are those of
:mod:`etl_platform.devservers.nvd`, queued with :meth:`EcbStandIn.inject`.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import uuid
import zipfile
from datetime import date, datetime, time as dtime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from etl_platform.devservers.fake_store import _LoopbackStandIn
from etl_platform.devservers.nvd import Fault

__all__ = ["EcbStandIn", "Fault"]

DATA_PATH = "/service/data"
SERIES_KEY = "D.USD.EUR.SP00.A"
SERIES_PATH = f"{DATA_PATH}/EXR/{SERIES_KEY}"
HISTORY_ZIP_PATH = "/stats/eurofxref/eurofxref-hist.zip"
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "ecb"
CSV_FILE = "EXR_D.USD.EUR.SP00.A_csvdata_lastN720_2025-10-28.csv"
JSON_FILE = "EXR_D.USD.EUR.SP00.A_jsondata_full_2024-06-03_2024-06-07.json"
HISTORY_FILE = "eurofxref-hist_2025-05-09.csv"
NO_RESULTS = b"No results found."
_CET = ZoneInfo("Europe/Berlin")


def _period(value: str, end: bool) -> date:
    """SDMX period bound: YYYY-MM-DD, YYYY-MM or YYYY (an end bound means the period's last day)."""
    parts = value.split("-")
    if len(parts) == 3:
        return date.fromisoformat(value)
    if len(parts) == 2:
        first = date(int(parts[0]), int(parts[1]), 1)
        if not end:
            return first
        return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if len(parts) == 1 and len(value) == 4:
        return date(int(value), 12, 31) if end else date(int(value), 1, 1)
    raise ValueError(value)


class EcbStandIn(_LoopbackStandIn):
    """ECB SDMX data API + eurofxref history stand-in, served from a daemon thread on loopback."""

    _name = "ecb"
    _base_path = DATA_PATH

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        text = (SAMPLES_DIR / CSV_FILE).read_bytes().decode("utf-8")
        reader = csv.reader(io.StringIO(text, newline=""))
        self._header = next(reader)
        self._rows = [row for row in reader if row]
        self._period_col = self._header.index("TIME_PERIOD")
        self._value_col = self._header.index("OBS_VALUE")
        self._template = json.loads((SAMPLES_DIR / JSON_FILE).read_text(encoding="utf-8"))
        self._history_csv = (SAMPLES_DIR / HISTORY_FILE).read_bytes()
        self._history_zip: bytes | None = None

    # ---- data

    @property
    def history_url(self) -> str:
        return f"{self.root_url}{HISTORY_ZIP_PATH}"

    @property
    def series_url(self) -> str:
        """``{url}/EXR/D.USD.EUR.SP00.A``: add ``?startPeriod=...&format=...``."""
        return f"{self.root_url}{SERIES_PATH}"

    @property
    def observations(self) -> dict[str, str]:
        """TIME_PERIOD -> OBS_VALUE text of the served series (``""`` when blanked)."""
        with self._lock:
            return {r[self._period_col]: r[self._value_col] for r in self._rows}

    def blank_observation(self, day: date | str, value: str = "") -> None:
        """Send ``day``'s observation with OBS_VALUE ``value`` (``""`` or ``"NaN"``), as for a holiday.

        In csvdata the OBS_VALUE field holds ``value``; in jsondata the
        observation's value is ``null``. If ``day`` is not in the series (a
        weekend or TARGET holiday the ECB left out), a row is added for it.
        """
        key = day.isoformat() if isinstance(day, date) else str(date.fromisoformat(day))
        with self._lock:
            for row in self._rows:
                if row[self._period_col] == key:
                    row[self._value_col] = value
                    return
            template = list(self._rows[0])
            template[self._period_col] = key
            template[self._value_col] = value
            self._rows.append(template)
            self._rows.sort(key=lambda r: r[self._period_col])

    def set_observation(self, day: date | str, value: float | str) -> None:
        """Serve ``value`` for ``day`` (adds the day if absent)."""
        self.blank_observation(day, str(value))

    def set_history_csv(self, data: bytes) -> None:
        """Serve ``data`` as ``eurofxref-hist.csv`` inside the zip."""
        with self._lock:
            self._history_csv = data
            self._history_zip = None

    def history_zip(self) -> bytes:
        with self._lock:
            if self._history_zip is None:
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                    archive.writestr("eurofxref-hist.csv", self._history_csv)
                self._history_zip = buffer.getvalue()
            return self._history_zip

    # ---- rendering

    def _render_csv(self, rows: list[list[str]]) -> bytes:
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self._header)
        writer.writerows(rows)
        return out.getvalue().encode("utf-8")

    def _render_json(self, rows: list[list[str]], detail: str) -> bytes:
        doc = copy.deepcopy(self._template)
        now = datetime.now(_CET).isoformat(timespec="milliseconds")
        doc["header"]["id"] = str(uuid.uuid4())
        doc["header"]["prepared"] = now
        dataset = doc["dataSets"][0]
        dataset["validFrom"] = now
        observations = {}
        times = []
        for i, row in enumerate(rows):
            try:
                value = float(row[self._value_col])
                if value != value:  # NaN is not JSON
                    value = None
            except ValueError:
                value = None
            observations[str(i)] = [value] if detail == "dataonly" else [value, 0, 0, None, None]
            day = date.fromisoformat(row[self._period_col])
            start = datetime.combine(day, dtime(0), _CET)
            end = datetime.combine(day, dtime(23, 59, 59, 999000), _CET)
            times.append(
                {
                    "id": day.isoformat(),
                    "name": day.isoformat(),
                    "start": start.isoformat(timespec="milliseconds"),
                    "end": end.isoformat(timespec="milliseconds"),
                }
            )
        series = dataset["series"]["0:0:0:0:0"]
        series["observations"] = observations
        if detail == "dataonly":
            series.pop("attributes", None)
            doc["structure"].pop("attributes", None)
        doc["structure"]["dimensions"]["observation"][0]["values"] = times
        return json.dumps(doc, indent=4).encode("utf-8")

    # ---- HTTP

    def _handle(self, method, path, params, body, headers):
        text = "text/plain; charset=utf-8"
        if method != "GET":
            return 405, b"Method Not Allowed", text, {"Allow": "GET"}
        if path == HISTORY_ZIP_PATH:
            return 200, self.history_zip(), "application/zip", {}
        if path.rstrip("/") != SERIES_PATH:
            return 404, NO_RESULTS, text, {}

        fmt = params.get("format")
        if fmt is None:
            accept = (headers.get("Accept") or "").lower()
            if "csv" in accept:
                fmt = "csvdata"
            elif "json" in accept:
                fmt = "jsondata"
        if fmt not in ("csvdata", "jsondata"):
            return 406, b"Not Acceptable: this stand-in serves format=csvdata or format=jsondata only.", text, {}
        detail = params.get("detail", "full")
        if detail not in ("full", "dataonly"):
            return 400, f"Invalid detail {detail!r}".encode(), text, {}
        try:
            start = _period(params["startPeriod"], end=False) if params.get("startPeriod") else None
            end = _period(params["endPeriod"], end=True) if params.get("endPeriod") else None
            last_n = int(params["lastNObservations"]) if params.get("lastNObservations") else None
        except ValueError as exc:
            return 400, f"Bad parameter value: {exc}".encode(), text, {}

        with self._lock:
            rows = [list(r) for r in self._rows]
        if start is not None:
            rows = [r for r in rows if r[self._period_col] >= start.isoformat()]
        if end is not None:
            rows = [r for r in rows if r[self._period_col] <= end.isoformat()]
        if last_n is not None:
            rows = rows[-last_n:] if last_n > 0 else []
        if not rows:
            return 404, NO_RESULTS, text, {}
        if fmt == "csvdata":
            return 200, self._render_csv(rows), "text/csv; charset=utf-8", {}
        return 200, self._render_json(rows, detail), "application/vnd.sdmx.data+json;version=1.0.0-wd", {}
