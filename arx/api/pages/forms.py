"""Reading the pages' forms: known fields only, each bounded, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from litestar import Request

FIELD_MAX = 4096


async def read_form(
    request: Request[Any, Any, Any], fields: Iterable[str], *, whole: Iterable[str] = ()
) -> dict[str, str]:
    """The named text fields of the posted form, each cut at ``FIELD_MAX``
    characters except those in ``whole`` (bounded by the body limit only)."""
    form = await request.form()
    uncut = set(whole)
    out: dict[str, str] = {}
    for key in fields:
        value = form.get(key)
        if isinstance(value, str):
            out[key] = value if key in uncut else value[:FIELD_MAX]
    return out


def same(a: str | None, b: str | None) -> bool:
    """Both present and equal, compared in constant time (tokens, ids)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())
