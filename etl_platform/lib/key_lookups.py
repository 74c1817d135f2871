"""Statements over many keys, a chunk of keys at a time.

One `IN (...)` per chunk keeps every statement within the bound parameters a database takes
(SQLite 32,766, Postgres 65,535), whatever the number of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

KEY_CHUNK = 5_000


def in_chunks(keys: Sequence[Any], size: int = KEY_CHUNK) -> Iterator[Sequence[Any]]:
    """The keys, `size` at a time, in order."""
    for first in range(0, len(keys), size):
        yield keys[first : first + size]


def select_in_chunks(
    connection: sa.Connection, build_select: Callable[[Sequence[Any]], sa.Select], keys: Iterable[Any]
) -> list[sa.Row]:
    """Every row of `build_select(chunk)` over the chunks of `keys`."""
    rows: list[sa.Row] = []
    for chunk in in_chunks(list(keys)):
        rows.extend(connection.execute(build_select(chunk)).all())
    return rows


def count_in_chunks(
    connection: sa.Connection, build_count: Callable[[Sequence[Any]], sa.Select], keys: Iterable[Any]
) -> int:
    """The sum of `build_count(chunk)` (a one-value count) over the chunks of `keys`."""
    return sum(connection.execute(build_count(chunk)).scalar_one() for chunk in in_chunks(list(keys)))
