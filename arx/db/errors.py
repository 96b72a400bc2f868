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

# ARX's own SQLSTATEs (class AX, migration 0004): from arx.keyed_execute_context,
# the database's word that the key or agent stopped being valid after it was
# remembered; from the deferred owner check, that an org would lose its last owner.
_ARX_SQLSTATES: dict[str, Callable[[], ARXError]] = {
    # migration 0004's deferred check that every org keeps an active owner
    "AX409": lambda: ConflictError("the org's last active owner cannot be removed or demoted"),
    "AX401": lambda: AuthenticationError("the API key is not valid (unknown, expired or revoked)"),
    "AX403": lambda: AgentDisabledError("this agent is disabled by the kill switch"),
    "AX423": lambda: AgentDisabledError("every agent of this org is disabled by the kill switch"),
}


def translate(exc: BaseException) -> ARXError | None:
    """The ARX error for a driver or pool error; ``None`` for anything else."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate in _ARX_SQLSTATES:
        return _ARX_SQLSTATES[exc.sqlstate]()
    if isinstance(exc, pg.CheckViolation) and _no_partition(exc):
        # The audit trail has no month for now (migration 0019): nothing can
        # be recorded, so nothing runs. Not the client's fault.
        return DatabaseUnavailableError(
            "the audit trail cannot record events now (no partition for this month); "
            "an operator must run `arx db migrate`"
        )
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


def _no_partition(exc: pg.CheckViolation) -> bool:
    # The routing error names the partitioned table and no constraint (a
    # CHECK of the trail's names its constraint); its text may be translated.
    diag = exc.diag
    return (diag.constraint_name, diag.schema_name, diag.table_name) == (
        None,
        "arx",
        "audit_events",
    )
