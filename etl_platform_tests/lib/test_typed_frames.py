"""typed_frame: rows -> exactly the columns and dtypes of a Pandera model."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from etl_platform.lib.typed_frames import TypingError, typed_frame

UtcTimestamp = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]
NOON_UTC = pd.Timestamp("2024-01-01T12:00:00Z")


class Event(pa.DataFrameModel):
    event_id: Series[str]
    at: Series[UtcTimestamp] = pa.Field(nullable=True)
    day: Series[pd.Timestamp] = pa.Field(nullable=True)
    count: Series["Int64"] = pa.Field(nullable=True)
    score: Series[float] = pa.Field(nullable=True)
    note: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False


COLUMNS = ["event_id", "at", "day", "count", "score", "note"]
DTYPES = {
    "event_id": "object",
    "at": "datetime64[ns, UTC]",
    "day": "datetime64[ns]",
    "count": "Int64",
    "score": "float64",
    "note": "object",
}


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in frame.dtypes.items()}


def events(*ats) -> list[dict]:
    return [{"event_id": f"e{i}", "at": at} for i, at in enumerate(ats)]


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "value",
    ["2024-01-01T12:00:00Z", "2024-01-01T14:00:00+02:00", "2024-01-01T07:00:00-05:00", "2024-01-01T12:00:00"],
)
def test_a_timestamp_in_any_notation_becomes_the_same_utc_instant(value):
    frame = typed_frame(events(value), Event)

    assert frame["at"].tolist() == [NOON_UTC]
    assert str(frame["at"].dtype) == "datetime64[ns, UTC]"


def test_mixed_offsets_and_naive_values_in_one_column_all_become_utc():
    values = [
        "2024-01-01T14:00:00+02:00",
        "2024-01-01T12:00:00",  # naive after an offset: UTC, not +02:00
        "2024-01-01T17:00:00+05:00",
        "2024-01-01T12:00:00.000",
        "2024-01-01T12:00:00Z",
        "2024-01-01 12:00:00",
    ]

    frame = typed_frame(events(*values), Event)

    assert frame["at"].tolist() == [NOON_UTC] * len(values)


def test_nvd_style_naive_milliseconds_are_read_as_utc():
    frame = typed_frame(events("2023-10-18T18:04:18.493"), Event)

    assert frame["at"].tolist() == [pd.Timestamp("2023-10-18T18:04:18.493Z")]


def test_missing_timestamps_are_null_not_errors():
    frame = typed_frame([{"event_id": "e0", "at": None}, {"event_id": "e1"}], Event)

    assert frame["at"].isna().all()
    assert str(frame["at"].dtype) == "datetime64[ns, UTC]"


def test_a_naive_timestamp_column_stays_naive():
    frame = typed_frame([{"event_id": "e0", "day": "2023-10-18"}], Event)

    assert frame["day"].tolist() == [pd.Timestamp("2023-10-18")]
    assert str(frame["day"].dtype) == "datetime64[ns]"


def test_an_unparseable_timestamp_raises_typing_error_naming_the_column():
    with pytest.raises(TypingError, match=r"column at: 1 value\(s\) are not ISO-8601 timestamps: \['yesterday'\]"):
        typed_frame(events("2024-01-01T12:00:00Z", "yesterday"), Event)


def test_an_unparseable_date_in_a_naive_column_raises_typing_error():
    with pytest.raises(TypingError, match=r"column day: .*'31/02/2024'"):
        typed_frame([{"event_id": "e0", "day": "31/02/2024"}], Event)


# --------------------------------------------------------------------------- other types


def test_values_get_the_models_dtypes():
    frame = typed_frame([{"event_id": "e0", "count": 3, "score": 9.8, "note": "n"}], Event)

    assert dtypes(frame) == DTYPES
    assert frame.iloc[0][["event_id", "count", "score", "note"]].tolist() == ["e0", 3, 9.8, "n"]


def test_missing_text_is_none_and_missing_integers_are_na():
    frame = typed_frame([{"event_id": "e0", "note": None, "count": None}, {"event_id": "e1"}], Event)

    assert frame["note"].tolist() == [None, None]
    assert frame["count"].isna().all()
    assert frame["count"].dtype == "Int64"


def test_an_unreadable_number_raises_typing_error_naming_the_column():
    with pytest.raises(TypingError, match=r"column score: cannot read values as float64"):
        typed_frame([{"event_id": "e0", "score": "high"}], Event)


def test_keys_the_model_does_not_declare_are_dropped():
    frame = typed_frame([{"event_id": "e0", "unexpected": 1}], Event)

    assert list(frame.columns) == COLUMNS


def test_empty_rows_give_an_empty_frame_with_the_models_columns_and_dtypes():
    frame = typed_frame([], Event)

    assert frame.empty
    assert list(frame.columns) == COLUMNS
    assert dtypes(frame) == DTYPES


def test_the_result_passes_the_models_own_validation():
    rows = [
        {"event_id": "e0", "at": "2024-01-01T14:00:00+02:00", "day": "2024-01-01", "count": 1, "score": 1.5},
        {"event_id": "e1", "at": "2024-01-01T12:00:00", "note": "x"},
    ]

    Event.validate(typed_frame(rows, Event))
