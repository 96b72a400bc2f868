"""The admin API (``/v1/admin``): orgs, people, tokens, agents, keys, credentials,
policy bundles, audit.

Every route passes ``arx.api.guards.control_guard``: an admin token or an
IdP access token, the org of the path, the org's admin allowlist, and the
roles the route declares. Responses never contain a stored secret; a key or
token appears exactly once, in the answer that creates it.
"""

from __future__ import annotations

from litestar import Router

from arx.api.admin import (
    agents,
    approvals,
    audit_proof,
    audit_read,
    notifications,
    orgs,
    people,
    policy,
    policy_replay,
    records,
)
from arx.api.guards import control_guard

admin_router = Router(
    path="/v1/admin",
    route_handlers=[
        *orgs.ROUTES,
        *agents.ROUTES,
        *people.ROUTES,
        *approvals.ROUTES,
        *notifications.ROUTES,
        *policy.ROUTES,
        *policy_replay.ROUTES,
        *records.ROUTES,
        *audit_proof.ROUTES,
        *audit_read.ROUTES,
    ],
    guards=[control_guard],
    tags=["admin"],
)
