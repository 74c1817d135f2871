"""The `limit` and `offset` query parameters of every list endpoint, bounded and documented."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# OFFSET is a bigint on Postgres: a larger one fails there ("bigint out of range") instead of
# answering an empty page, so it is refused as a bad parameter (422) on every warehouse.
MAX_OFFSET = 2**63 - 1

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")
]


def offset(what: str) -> Any:
    """The `offset` parameter of a list of `what` (e.g. `matching CVEs`)."""
    return Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description=f"number of {what} to skip, 0 to 2^63-1")
    ]
