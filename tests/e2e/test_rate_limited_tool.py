"""A tool that rate limits ARX, as an agent meets it: a 429 with Retry-After,
``RateLimitedError`` in the SDK, and an Idempotency-Key that stays usable.

The Falcon sandbox here allows two API requests a minute; the connector's
token request does not count (Falcon limits it separately).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from agentvault import ARXClient, RateLimitedError

from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import free_port

SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {"limit": 1}}


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home: Path = tmp_path_factory.mktemp("rate-limited-stack")
    with local_stack(
        home=home,
        port=free_port(),
        admin_url=pg_admin_url,
        db_name="arx_e2e_rate_limited",
        sandbox_rate_limit=2,
    ) as running:
        yield running


def test_a_rate_limited_tool_is_a_429_that_frees_the_idempotency_key(stack: Stack) -> None:
    key = stack.api_keys["triage-bot"]
    with ARXClient(key, base_url=stack.base_url) as arx:
        for _ in range(2):  # the sandbox's whole minute
            arx.execute("crowdstrike", "hosts:search", {"limit": 1})
        with pytest.raises(RateLimitedError) as limited:
            arx.execute("crowdstrike", "hosts:search", {"limit": 1})
    err = limited.value
    assert (err.status, err.code, err.upstream_status) == (429, "connector_rate_limited", 429)
    assert err.retry_after is not None
    assert 0 < err.retry_after <= 62
    assert err.event_id

    # The tool refused, nothing ran: a retry with the same key runs again (a
    # new decision), rather than replaying the 429 for the key's 24 hours.
    headers = {"authorization": f"Bearer {key}", "idempotency-key": "e2e-limited-1"}
    with httpx.Client(base_url=stack.base_url) as http:
        first = http.post("/v1/sdk/execute", json=SEARCH, headers=headers)
        again = http.post("/v1/sdk/execute", json=SEARCH, headers=headers)
    for resp in (first, again):
        assert resp.status_code == 429, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert int(resp.headers["retry-after"]) > 0
    assert "idempotent-replayed" not in again.headers
    assert again.json()["event_id"] != first.json()["event_id"]
