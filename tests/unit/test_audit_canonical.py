"""The canonical encoding the audit chain hashes (arx/audit/chain.py), pinned
byte for byte: anyone recomputing the chain must get exactly these bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from arx.audit import chain

# As PostgreSQL prints a jsonb value: its normal form, spaces and all.
RESULT = '{"e": 0.000066599, "m": {"f": false, "n": null, "t": true}, "z": 1.50}'
ROW = {
    "id": UUID("0f0e0d0c-0b0a-4908-8706-050403020100"),
    "seq": 7,
    "created_at": datetime(2026, 12, 1, 5, 43, 12, 123456, tzinfo=UTC),
    "txid": 99,  # bookkeeping: never hashed
    "verdict": "PERMIT",
    "targets": ['h\u00e9 "q" \\ \u2028'],
    "action": None,  # nulls are left out
    "result": chain.raw_json(RESULT.encode()),
}


def test_the_documented_bytes() -> None:
    assert (
        chain.canonical(ROW)
        == (
            '{"created_at":"2026-12-01T05:43:12.123456Z","id":"0f0e0d0c-0b0a-4908-8706-050403020100",'
            f'"result":{RESULT},"seq":7,'
            '"targets":["h\u00e9 \\"q\\" \\\\ \u2028"],"verdict":"PERMIT"}'
        ).encode()
    )


def test_json_is_hashed_as_printed_never_reencoded() -> None:
    """A number a float cannot hold, one no Python int may hold (jsonb prints
    1e5000 as 5001 digits), nesting deeper than Python's recursion limit: all
    hashed as they are, and a string is never a number."""
    for text in (
        '{"a": 123456789012345678901234567890.123456789}',
        '{"n": 1' + "0" * 5000 + "}",
        "[" * 5000 + "]" * 5000,
    ):
        assert chain.canonical({"r": chain.raw_json(text)}) == f'{{"r":{text}}}'.encode()
    number = chain.canonical({"r": chain.raw_json('{"a": 1.5}')})
    assert chain.canonical({"r": chain.raw_json('{"a": "1.5"}')}) != number
    assert chain.canonical({"r": chain.raw_json('{"a": 1.50}')}) != number
