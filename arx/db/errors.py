"""The one place where PostgreSQL's SQLSTATEs become ARX errors.

Connectivity (class 08, 57 "operator intervention", a pool timeout) is 503:
nothing was executed. A value the database refuses (class 22 data
exceptions, class 23 integrity violations) is the client's: 409 for a
duplicate, 404 for a reference to something absent, 422 otherwise. Nothing
here echoes the driver's message, which can quote the offending value.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from arx.errors import (
    ARXError,
    ConflictError,
    DatabaseUnavailableError,
    InvalidFieldError,
    NotFoundError,
)


def translate(exc: BaseException) -> ARXError | None:
    """The ARX error for a driver or pool error; ``None`` for anything else."""
    if isinstance(exc, PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError):
        return DatabaseUnavailableError("the database is unreachable or did not answer in time")
    if isinstance(exc, pg.UniqueViolation):
        return ConflictError("a record with these values already exists")
    if isinstance(exc, pg.ForeignKeyViolation):
        return NotFoundError("the request refers to something that does not exist")
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        name = type(exc).__name__
        return InvalidFieldError(f"the database refused a value ({name})", field=None)
    if isinstance(exc, psycopg.Error):
        # A programming error (a privilege, a missing object): no client can
        # fix it, and its text stays in the server log, not in the answer.
        return ARXError(f"a database operation failed ({type(exc).__name__})")
    return None
