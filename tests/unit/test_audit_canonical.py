"""The canonical encoding the audit chain hashes (arx/audit/chain.py), pinned
byte for byte: anyone recomputing the chain must get exactly these bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from arx.audit import chain

ROW = {
    "id": UUID("0f0e0d0c-0b0a-4908-8706-050403020100"),
    "seq": 7,
    "created_at": datetime(2026, 12, 1, 5, 43, 12, 123456, tzinfo=UTC),
    "txid": 99,  # bookkeeping: never hashed
    "verdict": "PERMIT",
    "reasons": ['ok \u00e9 "quoted" \\ \u2028'],
    "action": None,  # nulls are left out
    "result": chain.exact_loads(
        '{"z": 1.50, "a": [0.0000001, 123456789012345678901234567890.123456789, -7, 0],'
        ' "m": {"t": true, "f": false, "n": null}, "e": 6.6599e-05}'
    ),
}


def test_the_documented_bytes() -> None:
    assert (
        chain.canonical(ROW)
        == (
            '{"created_at":"2026-12-01T05:43:12.123456Z","id":"0f0e0d0c-0b0a-4908-8706-050403020100",'
            '"reasons":["ok \u00e9 \\"quoted\\" \\\\ \u2028"],'
            '"result":{"a":[0.0000001,123456789012345678901234567890.123456789,-7,0],"e":6.6599e-05,'
            '"m":{"f":false,"n":null,"t":true},"z":1.50},"seq":7,"verdict":"PERMIT"}'
        ).encode()
    )


def test_no_stored_string_passes_for_a_number() -> None:
    """policy_input is json: it may hold any string, NULs included."""
    number = chain.canonical({"p": chain.exact_loads('{"a": 1.5}')})
    for forged in ('{"a": "\\u00001.5\\u0000"}', '{"a": "1.5"}', '{"\\u00001\\u0000": 2}'):
        assert chain.canonical({"p": chain.exact_loads(forged)}) != number, forged


def test_numbers_no_python_int_could_hold_are_hashed() -> None:
    """jsonb prints 1e5000 as 5001 digits; Python refuses an int that long."""
    digits = "1" + "0" * 5000
    encoded = chain.canonical({"p": chain.exact_loads(f'{{"n": {digits}}}')})
    assert encoded == f'{{"p":{{"n":{digits}}}}}'.encode()
