"""Schema migrations: numbered SQL files applied once each, in order.

Runs with an administrative connection (one that may create roles); the
API itself never migrates. A migration and its bookkeeping row commit in the
same transaction, and an advisory lock keeps two migrators from racing.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql

_LOCK_KEY = 0x41525800  # "ARX\0": any constant shared by all migrators
# The audit trail's months created ahead of this one (arx.audit.partitions).
AUDIT_MONTHS_AHEAD = 3


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("arx.db").joinpath("migrations")
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), folder.joinpath(name).read_text()) for name in files]


def migrate(admin_url: str, *, upto: str | None = None) -> list[str]:
    """Apply pending migrations (those up to ``upto`` only, when given: the
    upgrade tests stop at an older schema); return the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS public.arx_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM public.arx_migrations")}
            for version, text in _migrations():
                if version in done or (upto is not None and version > upto):
                    continue
                with conn.transaction():
                    # Migration files are trusted text shipped inside the package.
                    conn.execute(text.encode())
                    conn.execute(
                        "INSERT INTO public.arx_migrations (version) VALUES (%s)", (version,)
                    )
                applied_now.append(version)
            # Every run, pending migrations or not, creates the audit trail's
            # months ahead (migration 0019; the API does it daily too).
            if conn.execute(
                "SELECT to_regprocedure('arx.ensure_audit_partitions(integer)')"
            ).fetchone() != (None,):
                conn.execute("SELECT arx.ensure_audit_partitions(%s)", (AUDIT_MONTHS_AHEAD,))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


# The roles that log in (migration 0001 and 0004 create them).
APP_ROLE = "arx_app"
CONTROL_ROLE = "arx_control"


def set_role_password(admin_url: str, role: str, password: str) -> None:
    """Give a login role a password (the local cluster and tests use this)."""
    if role not in (APP_ROLE, CONTROL_ROLE):
        raise ValueError(f"{role!r} is not a role ARX logs in as")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
