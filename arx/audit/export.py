"""The trail as files: JSON Lines (exact) and CSV (for spreadsheets).

JSONL: one event per line, the same object the read API returns.

CSV: one row per event, a fixed set of columns (``CSV_COLUMNS``); nested
values (params, reasons, result, …) are JSON text in their cell. A cell that
a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
``@``, tab or carriage return: an agent chooses its params and a host name
is any string) is prefixed with ``'`` (OWASP's CSV injection advice): the
CSV is for reading, the JSONL is the exact record.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import msgspec

from arx.audit.chain import timestamp
from arx.audit.types import AuditEvent

JSONL = "application/x-ndjson"
CSV = "text/csv"

CSV_COLUMNS = (
    "seq",
    "org_seq",
    "created_at",
    "kind",
    "id",
    "agent_id",
    "connector",
    "operation",
    "operation_kind",
    "verdict",
    "risk_score",
    "policy_id",
    "outcome",
    "decision_id",
    "approval_id",
    "action",
    "actor",
    "request_id",
    "client_request_id",
    "idempotency_key",
    "targets",
    "reasons",
    "params",
    "result",
    "error",
    "details",
    "bundle_revisions",
    "chain_hash",
)
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_encoder = msgspec.json.Encoder()


def jsonl(events: Iterable[AuditEvent]) -> bytes:
    return b"".join(_encoder.encode(e) + b"\n" for e in events)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | UUID):
        return str(value)
    text = value if isinstance(value, str) else _encoder.encode(value).decode()
    return "'" + text if text.startswith(_FORMULA_LEAD) else text


def _row(event: AuditEvent) -> list[str]:
    fields = msgspec.structs.asdict(event)
    chain = event.chain
    fields["org_seq"] = chain.org_seq if chain else None
    fields["chain_hash"] = chain.hash if chain else None
    fields["created_at"] = timestamp(event.created_at)
    return [_cell(fields[name]) for name in CSV_COLUMNS]


def csv_header() -> bytes:
    return csv_rows([], header=True)


def csv_rows(events: Iterable[AuditEvent], *, header: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(_row(e) for e in events)
    return out.getvalue().encode()
