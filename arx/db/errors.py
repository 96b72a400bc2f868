"""The one place where PostgreSQL's SQLSTATEs become ARX errors.

Connectivity (class 08, 57 "operator intervention", a pool timeout) is 503:
nothing was executed. A value the database refuses (class 22 data
exceptions, class 23 integrity violations) is the client's: 409 for a
duplicate, 404 for a reference to something absent, 422 otherwise. Nothing
here echoes the driver's message, which can quote the offending value.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from arx.errors import (
    AgentDisabledError,
    ARXError,
    AuthenticationError,
    ConflictError,
    DatabaseUnavailableError,
    InvalidFieldError,
    NotFoundError,
)

# Raised by arx.keyed_execute_context (migration 0004): the database's own
# word that the key or the agent stopped being valid after it was remembered.
_ACCESS_REVOKED: dict[str, Callable[[], ARXError]] = {
    "AX401": lambda: AuthenticationError("the API key is not valid (unknown, expired or revoked)"),
    "AX403": lambda: AgentDisabledError("this agent is disabled by the kill switch"),
    "AX423": lambda: AgentDisabledError("every agent of this org is disabled by the kill switch"),
}


def translate(exc: BaseException) -> ARXError | None:
    """The ARX error for a driver or pool error; ``None`` for anything else."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate in _ACCESS_REVOKED:
        return _ACCESS_REVOKED[exc.sqlstate]()
    return _driver_error(exc)


def _driver_error(exc: BaseException) -> ARXError | None:
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
