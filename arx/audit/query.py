"""Reading the trail: filters, cursors, and the order each read promises.

Three ways to read, each with the order it can promise:

- **list** (newest first, ``seq`` descending): browsing. A page's cursor is
  the last ``seq`` shown; an event whose transaction commits after a page
  was read, with a ``seq`` below it, is not shown by later pages (it is by a
  new listing, by the export and by the follow cursor).
- **export** (oldest first): every event whose transaction had committed
  when the export began (visible in that moment's snapshot, kept as text and
  applied to each page with ``pg_visible_in_snapshot``; an event's ``txid``
  is its top-level transaction), read in pages of short transactions, so a
  long export holds no transaction open and still sees one fixed set, each
  event once.
- **follow** (``org_seq``, the chain's order): what the sealer has chained,
  gap-free and final, so a consumer that keeps the last ``org_seq`` it saw
  sees every event exactly once, in per-org commit order, across restarts.

The statements are built from arx.audit.repo's constants (a clause per set
filter); values travel as parameters.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from arx.audit import repo
from arx.errors import InvalidQueryError

Kind = Literal["decision", "result", "admin", "refusal"]
Verdict = Literal["PERMIT", "ESCALATE", "DENY"]
# ``outcome_unknown`` is computed at read (repo.OUTCOME_AS_READ).
Outcome = Literal["success", "error", "unknown", "outcome_unknown"]

MAX_PAGE = 1000


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a reader asks for; every field narrows (all must hold)."""

    kind: Kind | None = None
    agent_id: UUID | None = None
    connector: str | None = None
    operation: str | None = None
    verdict: Verdict | None = None
    outcome: Outcome | None = None
    # created_at >= since and < until.
    since: datetime | None = None
    until: datetime | None = None

    def check(self) -> None:
        for name in ("connector", "operation"):
            value = getattr(self, name)
            if value is not None and ("\x00" in value or len(value) > 200):
                # Never a name ARX records, and PostgreSQL refuses NUL in text.
                raise InvalidQueryError(f"{name} is not a name ARX records", parameter=name)
        for name, value in (("since", self.since), ("until", self.until)):
            if value is not None and value.tzinfo is None:
                raise InvalidQueryError(
                    f"{name} needs a time zone (RFC 3339, e.g. 2026-12-01T00:00:00Z)",
                    parameter=name,
                )
        if self.since and self.until and self.since >= self.until:
            raise InvalidQueryError("since must be before until", parameter="until")

    def params(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__struct_fields__}

    def where(self) -> str:
        """The set filters' clauses (constants from arx.audit.repo), in a fixed order."""
        return "".join(
            repo.FILTER_CLAUSES[name]
            for name in self.__struct_fields__
            if getattr(self, name) is not None
        )


# --- list cursors -------------------------------------------------------------------------

_CURSOR_PREFIX = "s1."
_BAD_CURSOR = "cursor is not one this API gave out"


def encode_cursor(seq: int) -> str:
    """An opaque cursor: the last seq a page showed (versioned, so it may change)."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(cursor)
        seq = int(text.removeprefix(_CURSOR_PREFIX))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidQueryError(_BAD_CURSOR, parameter="cursor") from None
    if not 0 < seq < 2**63:
        raise InvalidQueryError(_BAD_CURSOR, parameter="cursor")
    return seq
