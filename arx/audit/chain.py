"""The per-org hash chain: the canonical encoding of an event and its link hash.

Canonical event (version 1): the event row's columns that are not null,
except ``txid`` (where the sealer found it, not what happened), as one JSON
object: keys sorted, no whitespace, UTF-8; uuids as lowercase strings,
timestamps as RFC 3339 UTC with microseconds and ``Z``
(``2026-12-01T05:43:12.123456Z``), JSON columns as the values PostgreSQL
holds, numbers exactly as it prints them (``1.50``, ``0.0000001``, a
40-digit integer: never rounded through a float, so a change in the
twentieth digit changes the hash; ``exact_loads`` reads them so): for jsonb
columns its normal form, for the ``json`` column (``policy_input``) the
text as written (``6.6599e-05``). Leaving nulls out keeps an old event's
hash when a later version of ARX adds a column.

Link (version 1), with ``prev`` 32 zero bytes for an org's first event::

    hash = SHA-256("arx.audit.chain.v1" ‖ 0x00 ‖ org id (16 bytes) ‖
                   org_seq (8 bytes, big-endian) ‖ prev (32 bytes) ‖ canonical event)

The domain tag and the fixed-width fields before the variable-length event
leave no two different inputs with the same bytes; the org id and position
make a link meaningless anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

DOMAIN = b"arx.audit.chain.v1\x00"
GENESIS = bytes(32)
# Columns that are bookkeeping of the trail, not part of the event.
NOT_HASHED = frozenset({"txid"})


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: the one form ARX signs and hashes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# A number travels through the (fast, C) JSON encoder as a string between two
# copies of a random token of this process, and is written back bare. No
# stored string can pose as one: nobody knows the token (`policy_input` is
# `json`, which may hold any string, even one with NULs).
_TOKEN = secrets.token_hex(16)
_MARKED = re.compile(f'"{_TOKEN}(-?[0-9][0-9.eE+-]*){_TOKEN}"')


def _marked(text: str) -> str:
    return f"{_TOKEN}{text}{_TOKEN}"


def exact_loads(data: str | bytes) -> Any:
    """A json/jsonb column as PostgreSQL holds it, numbers as the digits it
    printed (never a float, never a Python int: one of more than 4 300
    digits, which jsonb prints for 1e5000, would be refused), for
    ``canonical`` only. Register it on the cursors that read events for
    hashing (``set_json_loads``)."""
    return json.loads(data, parse_float=_marked, parse_int=_marked)


def _other(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return _marked(format(value, "f"))  # positional, as PostgreSQL prints
    raise TypeError(f"no canonical form for {type(value).__name__}")


def _top(value: Any) -> Any:
    # Columns of these types are only ever at the top; JSON columns hold none.
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return timestamp(value)
    return value


def canonical(row: dict[str, Any]) -> bytes:
    """The canonical encoding of one ``arx.audit_events`` row (as a dict)."""
    doc = {k: _top(v) for k, v in row.items() if v is not None and k not in NOT_HASHED}
    text = json.dumps(
        doc,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_other,
    )
    return _MARKED.sub(r"\1", text).encode()


def link(org_id: UUID, org_seq: int, prev: bytes, event: bytes) -> bytes:
    """The chain hash of the event at ``org_seq`` (``event``: its canonical bytes)."""
    if len(prev) != 32:
        raise ValueError("prev must be a 32-byte hash")
    digest = hashlib.sha256(DOMAIN)
    digest.update(org_id.bytes)
    digest.update(org_seq.to_bytes(8, "big"))
    digest.update(prev)
    digest.update(event)
    return digest.digest()
