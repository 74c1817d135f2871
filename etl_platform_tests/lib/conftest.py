"""What the bulk loads send to Postgres, seen at the driver."""

from __future__ import annotations

import re

import psycopg
import pytest


@pytest.fixture
def copy_formats(monkeypatch) -> list[str]:
    """The format (BINARY or CSV) of every `COPY ... FROM STDIN` run during the test, in order.

    Read from the statements psycopg is given, so a test names the path its rows really took.
    """
    formats: list[str] = []
    copy = psycopg.Cursor.copy

    def recording_copy(cursor, statement, *args, **kwargs):
        text = statement if isinstance(statement, str) else statement.as_string(cursor.connection)
        formats.extend(re.findall(r"\(FORMAT (\w+)\)", text))
        return copy(cursor, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", recording_copy)
    return formats
