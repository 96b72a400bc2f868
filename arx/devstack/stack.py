"""Pieces shared by the demo and the test suite: policy bundles and databases."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from arx.db.migrate import APP_ROLE, CONTROL_ROLE, migrate, set_role_password
from arx.devstack.opa import TEST_FILES, build_bundle
from arx.devstack.postgres import psql_url_with
from arx.devstack.process import DevstackError, run_command

BASE_BUNDLE = "arx-base"
__all__ = ["APP_ROLE", "CONTROL_ROLE"]


def build_policy_bundles(opa: Path, repo_root: Path, out_dir: Path) -> list[Path]:
    """Build the base library (``rego/``) and every org bundle (``bundles/*``).

    An org bundle is built only when its data is valid as a whole:
    ``data.arx.org.valid`` with the base library, the check
    scripts/check-policies.sh also runs. The decision checks only the rule or
    default that decides each call, so a malformed rule is refused here rather
    than found call by call (where it would DENY). Raises ``DevstackError``
    quoting ``data.arx.org.errors`` for a bundle that is not valid.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    base = repo_root / "rego"
    built = [out_dir / f"{BASE_BUNDLE}.tar.gz"]
    build_bundle(opa, base, built[0], name=BASE_BUNDLE)
    for source in sorted(p for p in (repo_root / "bundles").iterdir() if p.is_dir()):
        # The directory is named for the org's slug; its data sits at data.orgs[slug].
        org_input = json.dumps({"org": {"slug": source.name}})
        evaluate: list[str | Path] = [opa, "eval", "-b", base, "-b", source, "--ignore", TEST_FILES]
        try:
            run_command(
                [*evaluate, "--fail", f"data.arx.org.valid with input as {org_input}"],
                what=f"opa eval data.arx.org.valid for {source}",
            )
        except DevstackError:
            errors = run_command(
                [*evaluate, "--format", "pretty", f"data.arx.org.errors with input as {org_input}"],
                what=f"opa eval data.arx.org.errors for {source}",
            )
            raise DevstackError(
                f"org bundle {source} is not valid (data.orgs.{source.name}):\n{errors.strip()}"
            ) from None
        out = out_dir / f"{source.name}.tar.gz"
        build_bundle(opa, source, out, name=source.name)
        built.append(out)
    return built


def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (optionally from ``template``); return its admin URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        conn.execute(query)
    return psql_url_with(admin_url, dbname=name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass(frozen=True)
class Logins:
    """How the two API roles connect to one migrated database."""

    app_url: str  # arx_app: the agent path
    control_url: str  # arx_control: administration, sign-in, SCIM
    app_password: str
    control_password: str


def migrate_and_grant(
    db_admin_url: str, *, app_password: str | None = None, control_password: str | None = None
) -> Logins:
    """Migrate a database and give both login roles passwords."""
    migrate(db_admin_url)
    app_password = app_password or secrets.token_urlsafe(24)
    control_password = control_password or secrets.token_urlsafe(24)
    set_role_password(db_admin_url, APP_ROLE, app_password)
    set_role_password(db_admin_url, CONTROL_ROLE, control_password)
    return Logins(
        app_url=psql_url_with(db_admin_url, user=APP_ROLE, password=app_password),
        control_url=psql_url_with(db_admin_url, user=CONTROL_ROLE, password=control_password),
        app_password=app_password,
        control_password=control_password,
    )
