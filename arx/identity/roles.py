"""What a person (or an admin token) may do in one org.

Roles are per org: one person may be an owner in one org and an auditor in
another. A route declares the roles it accepts (``arx.api.guards``); holding
any one of them is enough.

    owner          everything, including making other owners
    admin          agents, keys, credentials, people (not owners), tokens, switches
    policy_author  the org's policy bundles
    reviewer       approvals of escalated actions
    auditor        reads: the audit trail and the org's configuration, never a secret
    scim           admin tokens only: the IdP's provisioning client, /scim/v2 and nothing else
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    POLICY_AUTHOR = "policy_author"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    SCIM = "scim"


# Roles a person can hold (scim belongs to provisioning tokens only).
PERSON_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.POLICY_AUTHOR, Role.REVIEWER, Role.AUDITOR})

# What routes accept, named for what they do.
MANAGE = (Role.OWNER, Role.ADMIN)
READ = (Role.OWNER, Role.ADMIN, Role.POLICY_AUTHOR, Role.REVIEWER, Role.AUDITOR)
AUDIT = (Role.OWNER, Role.ADMIN, Role.AUDITOR)
# What can lock the org out of its own credentials (its key-encryption key).
OWN = (Role.OWNER,)
PROVISION = (Role.SCIM,)
REVIEW = (Role.REVIEWER,)


def may_grant(holder: frozenset[str], wanted: frozenset[str]) -> bool:
    """Nobody hands out more than they hold; only an owner makes owners or
    provisioning tokens, and an admin grants any role short of owner."""
    if Role.OWNER in holder:
        return True
    if Role.ADMIN in holder:
        return Role.OWNER not in wanted and Role.SCIM not in wanted
    return False
