"""What a replay answers: how a candidate bundle would have decided what
the org's agents really asked, compared with what was decided then.

Wire types: new fields get defaults, and no field ever changes its type.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

# A recorded decision the candidate answers with no valid decision (undefined,
# or a document that is not a decision): the live path would fail closed on
# it (503, nothing executed).
FAIL_CLOSED = "FAIL_CLOSED"


class ReplayExample(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded decision the candidate decides differently."""

    event_id: UUID
    decided_at: datetime
    agent_id: UUID | None
    agent_name: str | None
    connector: str | None
    operation: str | None
    risk_before: int
    risk_after: int | None
    # The candidate's reasons for its decision.
    reasons: list[str]


class ReplayChange(msgspec.Struct, frozen=True, kw_only=True):
    """Recorded decisions that moved from one (verdict, rule) to another.

    A change of risk score alone is a group whose verdict and rule stay the same.
    ``new_verdict`` is PERMIT, ESCALATE, DENY or FAIL_CLOSED.
    """

    old_verdict: str
    old_policy_id: str | None
    new_verdict: str
    new_policy_id: str | None
    count: int
    # The newest few, newest first.
    examples: list[ReplayExample]


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    """The org's decisions recorded in [since, until), newest first, at most
    ``limit`` of them, decided again by the candidate with the base library.

    ``examined`` = ``not_replayable`` + ``unchanged`` + ``changed``. A decision
    is not replayable when it was recorded without its input (before ARX
    stored inputs). ``truncated``: the window held more decisions than
    ``limit``; the oldest were left out.
    """

    org_slug: str
    # The revision the candidate would get if pushed (<slug>-<sha256 prefix>).
    candidate_revision: str
    since: datetime
    until: datetime
    limit: int
    truncated: bool
    examined: int
    not_replayable: int
    unchanged: int
    changed: int
    # Largest group first.
    changes: list[ReplayChange]
