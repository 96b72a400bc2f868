"""Schemathesis hooks for ``test_schemathesis.py`` (loaded by the ``st`` process).

One hook: an ``Idempotency-Key`` is unique per request by contract (a key
reused for a different request is a 422, by design), and no schema can say
"unique across requests". Generated keys are drawn from a tiny space, so
valid ones get a unique suffix; invalid ones (negative tests) are left as
generated, so the key's validation is still exercised.
"""

from __future__ import annotations

import itertools
import re

import schemathesis
from schemathesis import Case, HookContext

# The pattern the OpenAPI document gives the header (arx.api.openapi).
_VALID_KEY = re.compile(r"[!-~]([ -~]{0,253}[!-~])?")
_counter = itertools.count()


@schemathesis.hook
def map_case(context: HookContext, case: Case) -> Case:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.fullmatch(key):
        headers["Idempotency-Key"] = f"{key[:200]}-{next(_counter)}"
    return case
