"""Replay before activation: a candidate bundle decides again what the org's
agents really asked, and the answer says which decisions would change.

Guarantees:
- the candidate is evaluated by ARX's own ``opa`` (the toolchain) in a
  scratch directory, with the base library beside it: the sidecars, and
  what they serve, are never touched;
- the candidate is unpacked without trust (``archive.unpack``) and must pass
  every check a push makes but its tests (``Toolchain.vet``); it must own
  exactly ``orgs/<slug>`` of the org it is replayed for, as a push must;
- each decision is evaluated on the input it was made on, byte for byte
  (``arx.audit_events.policy_input``, migration 0014): a difference comes
  from the policy, never from a rebuilt input; decisions recorded without
  one are counted as not replayable;
- every decision is evaluated in one ``opa eval`` process;
- decisions are read as arx_control in one transaction scoped to the org
  (row-level security): another org's decisions are never read. No
  connection is held while ``opa`` runs;
- bounded: at most ``MAX_DECISIONS``, the newest of the window, and the
  answer says when the window held more.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from arx.audit import repo
from arx.db.pool import Conn, org_transaction
from arx.errors import BundleRejectedError, InvalidFieldError
from arx.policy.lifecycle import archive, service
from arx.policy.lifecycle.replay_types import (
    FAIL_CLOSED,
    ReplayChange,
    ReplayExample,
    ReplayReport,
)
from arx.policy.lifecycle.toolchain import Toolchain
from arx.policy.types import Decision

# At most this many decisions per replay (the newest of the window): 10 000
# inputs are about 20 MB and one opa eval of them takes seconds.
MAX_DECISIONS = 10_000
DEFAULT_EXAMPLES = 5
MAX_EXAMPLES = 50

# "30m", "24h", "7d": a window ending now. Five digits keep the start inside
# what datetime (and PostgreSQL) can represent.
_DURATION = re.compile(r"([1-9][0-9]{0,4})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# What a query's time may be, as the OpenAPI document states it: a duration,
# or an ISO 8601 time to the minute, second or microsecond, with an offset
# (Z, +02:00) or none (UTC).
MOMENT_PATTERN = (
    r"^([1-9][0-9]{0,4}[smhd]|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"
    r"(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)$"
)
_MOMENT = re.compile(MOMENT_PATTERN)
# Every recorded decision, each under its event id, decided by the candidate.
# `with` inside the comprehension makes each one its own evaluation. The
# input is bound to a variable first: on opa 1.22.3, `with input as x.input`
# (a reference into the input being replaced) decides every one as if the
# input were missing, whereas a variable is taken as it is (both checked).
QUERY = (
    "{x.id: d | some x in input.decisions; one := x.input; "
    "d := data.arx.decision with input as one}"
)
# A cursor batch: enough to keep round trips few, small enough that the read
# stops soon after the window's end.
_BATCH = 500


@dataclass(frozen=True, slots=True)
class Recorded:
    """A decision event as replay reads it (``repo.RECORDED_DECISIONS``)."""

    id: UUID
    created_at: datetime
    agent_id: UUID | None
    agent_name: str | None
    connector: str | None
    operation: str | None
    verdict: str
    policy_id: str | None
    risk_score: int
    # JSON text; None when the decision was recorded without its input.
    policy_input: str | None


class _Item(msgspec.Struct, frozen=True):
    id: UUID
    input: msgspec.Raw


class _Inputs(msgspec.Struct, frozen=True):
    decisions: list[_Item]


def moment(text: str, *, now: datetime, field: str) -> datetime:
    """A query's time: ISO 8601 (UTC when it names no offset) or a duration
    before ``now`` (``30m``, ``24h``, ``7d``)."""
    found = _DURATION.fullmatch(text)
    if found:
        return now - timedelta(**{_UNITS[found[2]]: int(found[1])})
    try:
        # The pattern first: the document's rule is the rule, whatever else
        # fromisoformat would take.
        if not _MOMENT.fullmatch(text):
            raise ValueError(text)
        when = datetime.fromisoformat(text)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise InvalidFieldError(
            f"{field} must be an ISO 8601 time (2025-01-31T08:00:00Z) or a duration before "
            f"now (30m, 24h, 7d), not {shown!r}",
            field=field,
        ) from None


def window(
    since: str, until: str | None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``[since, until)`` from the query's texts; ``until`` defaults to now."""
    now = now or datetime.now(UTC)
    start = moment(since, now=now, field="since")
    end = moment(until, now=now, field="until") if until is not None else now
    if start >= end:
        raise InvalidFieldError(
            f"since ({start.isoformat()}) must be before until ({end.isoformat()})",
            field="since",
        )
    return start, end


async def recorded_decisions(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    *,
    since: datetime,
    until: datetime,
    limit: int,
) -> tuple[list[Recorded], bool]:
    """The org's decisions in ``[since, until)``, newest first, at most
    ``limit``; and whether the window held more."""
    found: list[Recorded] = []
    truncated = False
    async with (
        org_transaction(pool, org_id) as conn,
        conn.cursor("arx_replay", row_factory=class_row(Recorded)) as cur,
    ):
        cur.itersize = _BATCH
        await cur.execute(repo.RECORDED_DECISIONS, {"org_id": org_id, "until": until})
        async for row in cur:
            # seq and created_at are stamped together (arx.stamp_audit_event),
            # so the first event older than the window ends it.
            if row.created_at < since:
                break
            if len(found) == limit:
                truncated = True
                break
            found.append(row)
    return found, truncated


async def replay(
    pool: AsyncConnectionPool[Conn],
    toolchain: Toolchain,
    org_id: UUID,
    candidate: bytes,
    *,
    since: datetime,
    until: datetime,
    limit: int = MAX_DECISIONS,
    examples: int = DEFAULT_EXAMPLES,
) -> ReplayReport:
    """Decide the org's recorded decisions again with the archive ``candidate``."""
    slug = await service.org_slug(pool, org_id)
    revision = service.revision_for(slug, hashlib.sha256(candidate).hexdigest())
    with tempfile.TemporaryDirectory(prefix="arx-replay-") as tmp:
        work = Path(tmp)
        source = work / "bundle"
        source.mkdir()
        # Refused before anything is read from the trail, and by the checks
        # of a push but its tests (a replay often comes before they are
        # updated): a replay is of what could be activated.
        await asyncio.to_thread(archive.unpack, candidate, source)
        await toolchain.vet(source, slug, run_tests=False)
        decisions, truncated = await recorded_decisions(
            pool, org_id, since=since, until=until, limit=limit
        )
        replayable = [d for d in decisions if d.policy_input is not None]
        decided = await _evaluate(toolchain, work, replayable)
    changes, unchanged = _compare(replayable, decided, examples)
    return ReplayReport(
        org_slug=slug,
        candidate_revision=revision,
        since=since,
        until=until,
        limit=limit,
        truncated=truncated,
        examined=len(decisions),
        not_replayable=len(decisions) - len(replayable),
        unchanged=unchanged,
        changed=len(replayable) - unchanged,
        changes=changes,
    )


def _inputs_file(decisions: list[Recorded]) -> bytes:
    # Each stored input goes into the file as its own text: nothing is parsed
    # and encoded again on the way to opa.
    items = [
        _Item(id=d.id, input=msgspec.Raw(d.policy_input.encode()))
        for d in decisions
        if d.policy_input is not None
    ]
    return msgspec.json.encode(_Inputs(decisions=items))


async def _evaluate(toolchain: Toolchain, work: Path, decisions: list[Recorded]) -> dict[str, Any]:
    """The candidate's answer for each decision, by event id (one opa process).

    Run even with nothing to replay, so that a candidate that does not
    compile is refused whatever the window holds.
    """
    inputs = work / "inputs.json"
    await asyncio.to_thread(inputs.write_bytes, _inputs_file(decisions))
    # Relative paths from the scratch directory: opa's messages name the
    # engineer's files (bundle/orgs/...) and nothing of this machine.
    value = await toolchain.evaluate_many(
        [Path("base"), Path("bundle")], Path(inputs.name), QUERY, cwd=work
    )
    if not isinstance(value, dict):
        raise BundleRejectedError("opa eval of the candidate produced no result")
    return value


def _decision(value: Any) -> Decision | None:
    """The candidate's answer as the live path would take it, or None where
    the live path would fail closed (undefined, or not a decision)."""
    if value is None:
        return None
    try:
        return msgspec.convert(value, Decision)
    except msgspec.ValidationError:
        return None


# (old verdict, old policy id, new verdict, new policy id)
_Transition = tuple[str, str | None, str, str | None]


def _compare(
    decisions: Iterable[Recorded], decided: dict[str, Any], examples: int
) -> tuple[list[ReplayChange], int]:
    groups: dict[_Transition, list[ReplayExample]] = {}
    counts: dict[_Transition, int] = {}
    unchanged = 0
    for d in decisions:  # newest first: the examples kept are the newest
        new = _decision(decided.get(str(d.id)))
        key: _Transition
        if new is None:
            key = (d.verdict, d.policy_id, FAIL_CLOSED, None)
            risk_after = None
            reasons = ["the candidate gave no valid decision: the call would fail closed"]
        elif (new.verdict.value, new.policy_id, new.risk_score) == (
            d.verdict,
            d.policy_id,
            d.risk_score,
        ):
            unchanged += 1
            continue
        else:
            key = (d.verdict, d.policy_id, new.verdict.value, new.policy_id)
            risk_after, reasons = new.risk_score, new.reasons
        counts[key] = counts.get(key, 0) + 1
        kept = groups.setdefault(key, [])
        if len(kept) < examples:
            kept.append(
                ReplayExample(
                    event_id=d.id,
                    decided_at=d.created_at,
                    agent_id=d.agent_id,
                    agent_name=d.agent_name,
                    connector=d.connector,
                    operation=d.operation,
                    risk_before=d.risk_score,
                    risk_after=risk_after,
                    reasons=reasons,
                )
            )
    changes = [
        ReplayChange(
            old_verdict=k[0],
            old_policy_id=k[1],
            new_verdict=k[2],
            new_policy_id=k[3],
            count=counts[k],
            examples=groups[k],
        )
        for k in sorted(counts, key=lambda k: (-counts[k], *(s or "" for s in k)))
    ]
    return changes, unchanged
