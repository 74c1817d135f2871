"""Values the routers share: UTC datetimes, JSON stored as text, and bounds on nesting.

The nesting bound exists because Python's `json`, `repr` and Pydantic's serializer all recurse
per level: a value nested ~1000 levels deep (which a 16 MiB body easily holds) overflows them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, PlainSerializer, WithJsonSchema

MAX_DEPTH = 32
ELIDED = "..."


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; naive values are UTC already."""
    # SQLite hands back naive values (stored as UTC); Postgres aware ones in the session zone.
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


UtcDateTime = Annotated[
    datetime,
    AfterValidator(as_utc),
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2024-03-10T12:00:00+00:00"}
    ),
]


def deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep (`[]` is 1 level).
    Iterative, so that any depth is measured without recursing."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def clipped(value: Any, limit: int = MAX_DEPTH) -> Any:
    """`value` with every object or array below `limit` levels replaced by `"..."`."""
    if not isinstance(value, (dict, list)):
        return value
    if limit <= 0:
        return ELIDED
    if isinstance(value, dict):
        return {key: clipped(item, limit - 1) for key, item in value.items()}
    return [clipped(item, limit - 1) for item in value]


def parsed_json(text: Any) -> Any:
    """A JSON value stored as text, parsed and clipped to MAX_DEPTH levels (what every reader can
    serialize); text that is not JSON is returned as it is."""
    if not isinstance(text, (str, bytes)):
        return clipped(text)
    try:
        return clipped(orjson.loads(text))
    except orjson.JSONDecodeError:
        return text
