"""What every router of the API depends on: the warehouse engine and one connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request


def get_engine(request: Request) -> sa.Engine:
    """The warehouse engine opened when the app started (see `create_app`)."""
    return request.app.state.engine


def get_connection(engine: Annotated[sa.Engine, Depends(get_engine)]) -> Iterator[sa.Connection]:
    """A connection for one request; its (read) transaction ends with the request."""
    with engine.connect() as connection:
        yield connection


Engine = Annotated[sa.Engine, Depends(get_engine)]
Connection = Annotated[sa.Connection, Depends(get_connection)]
