"""The fakes, exercised by the vendors' own Python clients over real HTTP, for
every operation ARX uses: where a client and a fake disagree, the fake is
wrong (issue 10, point 7). Found so far:

- FalconPy's ``get_device_details`` POSTs the ids as JSON to
  ``/devices/entities/devices/v2``; the fake answered only GET (405). Fixed.
  Its ``Hosts`` class also revokes its token at logout (``/oauth2/revoke``).
- okta 3.4.6 sends ``Authorization: SSWS<token>`` with no space (Okta
  documents ``SSWS <token>``); the fake takes both, ARX sends the documented
  form. The SDK parses the fake's users into its strict models.
- jira 3.10 (REST v3) reads ``/rest/api/3/serverInfo`` first, and
  ``/rest/api/3/field`` before a search, which the fake did not answer (404):
  fixed. Its search is ``GET /search/jql`` with query parameters; its
  ``add_comment`` with a plain string would send a string body, which v3
  (and the fake) refuse: rich text is ADF.
- splunk-sdk 2.1 sends its login form without a Content-Type (Splunk takes
  it; the fake did not), reads ``/services/server/info`` first, uses the
  ``/services/search/v2/jobs`` endpoints from Splunk 9.0.2 on, in the app
  namespace (``/servicesNS/<owner>/<app>/…``), needs a job's ``eai:acl`` in
  its Atom entry, and POSTs its v2 results requests. All added to the fake.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.mgmt.securityinsight import SecurityInsights
from azure.mgmt.securityinsight.models import IncidentComment
from falconpy import Hosts
from jira import JIRA
from okta.client import Client as OktaClient
from splunklib import client as splunk_client
from splunklib import results as splunk_results

from arx.connectors.jira import adf
from arx.sandbox.falcon import FalconState
from arx.sandbox.falcon import create_app as falcon_app
from arx.sandbox.jira import JiraState
from arx.sandbox.jira import create_app as jira_app
from arx.sandbox.okta import OktaState
from arx.sandbox.okta import create_app as okta_app
from arx.sandbox.sentinel import SentinelState
from arx.sandbox.sentinel import create_app as sentinel_app
from arx.sandbox.splunk import SplunkState
from arx.sandbox.splunk import create_app as splunk_app
from tests.fixtures.serve import self_signed, serve_asgi

FALCON_ID = "0123456789abcdef0123456789abcdef"
FALCON_SECRET = "falcon-client-secret-8b7a6c"
OKTA_TOKEN = "00okta-sdk-token-1f2e3d"
WS_FIN = "4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"


@pytest.fixture
def falcon() -> Iterator[tuple[str, FalconState]]:
    state = FalconState.with_demo_devices({FALCON_ID: FALCON_SECRET})
    with serve_asgi(falcon_app(state)) as url:
        yield url, state


def test_falconpy_drives_the_falcon_fake(falcon: tuple[str, FalconState]) -> None:
    url, state = falcon
    hosts = Hosts(client_id=FALCON_ID, client_secret=FALCON_SECRET, base_url=url)
    found = hosts.query_devices_by_filter(filter="hostname:'WS-FIN-0142'", limit=10)
    assert found["status_code"] == 200, found
    assert found["body"]["resources"] == [WS_FIN]
    details = hosts.get_device_details(ids=[WS_FIN])
    assert details["status_code"] == 200, details
    assert details["body"]["resources"][0]["hostname"] == "WS-FIN-0142"
    contained = hosts.perform_action(action_name="contain", ids=[WS_FIN])
    assert contained["status_code"] == 202, contained
    assert state.devices[WS_FIN].status == "containment_pending"
    hosts.get_device_details(ids=[WS_FIN])  # observed pending, then settled
    hosts.get_device_details(ids=[WS_FIN])
    assert state.devices[WS_FIN].status == "contained"
    lifted = hosts.perform_action(action_name="lift_containment", ids=[WS_FIN])
    assert lifted["status_code"] == 202, lifted
    wrong = Hosts(client_id=FALCON_ID, client_secret="not-it", base_url=url)
    refused = wrong.query_devices_by_filter(filter="hostname:'x'")
    assert refused["status_code"] in (401, 403)
    hosts.auth_object.logout()
    assert [r.path for r in state.requests][-1] == "/oauth2/revoke"
    assert all(r.status < 500 for r in state.requests)


@pytest.fixture
def okta(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, OktaState]]:
    # The SDK refuses http:// unless told it is a test (its own switch).
    monkeypatch.setenv("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", "true")
    state = OktaState.demo(OKTA_TOKEN)
    with serve_asgi(okta_app(state)) as url:
        yield url, state


@pytest.mark.anyio
async def test_the_okta_sdk_drives_the_okta_fake(okta: tuple[str, OktaState]) -> None:
    url, state = okta
    client = OktaClient({"orgUrl": url, "token": OKTA_TOKEN, "rateLimit": {"maxRetries": 0}})
    users, _, err = await client.list_users(search='profile.email eq "ana.ruiz@example.com"')
    assert err is None, err
    [ana] = users
    assert (ana.profile.login, ana.status.value) == ("ana.ruiz@example.com", "ACTIVE")
    user, _, err = await client.get_user(ana.id)
    assert err is None, err
    assert user.id == ana.id
    # Calls without a body answer (response, error); the others (result, response, error).
    for call, status in ((client.suspend_user, "SUSPENDED"), (client.unsuspend_user, "ACTIVE")):
        assert (await call(ana.id))[-1] is None
        assert state.users[ana.id].status == status
    assert (await client.revoke_user_sessions(ana.id, oauth_tokens=True))[-1] is None
    assert state.users[ana.id].sessions == 0
    group = next(iter(state.groups))
    assert (await client.unassign_user_from_group(group, ana.id))[-1] is None
    assert group not in state.users[ana.id].groups
    assert (await client.assign_user_to_group(group, ana.id))[-1] is None
    assert group in state.users[ana.id].groups
    # Okta's errors reach the SDK as Okta's errors.
    err = (await client.unsuspend_user(ana.id))[-1]
    assert err is not None
    assert "E0000001" in str(err)
    assert all(r.auth_valid for r in state.requests)


def test_the_jira_client_drives_the_jira_fake() -> None:
    state = JiraState.demo("arx-bot@example.com", "atl-api-token-4c3b2a")
    with serve_asgi(jira_app(state)) as url:
        jira = JIRA(
            server=url,
            basic_auth=("arx-bot@example.com", "atl-api-token-4c3b2a"),
            options={"rest_api_version": "3"},
        )
        found = jira.enhanced_search_issues("project = SEC", fields=["summary", "status"])
        assert [i.key for i in found] == ["SEC-1", "SEC-2"]
        assert jira.issue("SEC-1").fields.summary.startswith("Phishing")
        new = jira.create_issue(
            fields={
                "project": {"key": "SEC"},
                "issuetype": {"name": "Task"},
                "summary": "Created by the Jira client",
                "description": adf("from the official client"),
            }
        )
        assert state.issues[new.key].summary == "Created by the Jira client"
        comment = jira.add_comment(new.key, adf("a comment"))  # type: ignore[arg-type]
        assert state.issues[new.key].comments[0]["id"] == comment.id
        moves = {t["name"]: t["id"] for t in jira.transitions(new.key)}
        jira.transition_issue(new.key, moves["Done"])
        assert state.issues[new.key].status == "Done"
    assert all(r.auth_valid and r.status < 400 for r in state.requests)


def test_the_splunk_sdk_drives_the_splunk_fake() -> None:
    state = SplunkState.demo("arx-svc", "splunk-pass-7e6d5c")
    notable = next(iter(state.notables))
    with serve_asgi(splunk_app(state)) as url:
        host, port = url.removeprefix("http://").split(":")
        service = splunk_client.connect(
            host=host,
            port=int(port),
            scheme="http",
            username="arx-svc",
            password="splunk-pass-7e6d5c",
        )
        job = service.jobs.create("search index=main user=ana.ruiz")
        for _ in range(50):
            if job.is_done():
                break
        assert job.is_done()
        assert job["resultCount"] == "2"
        rows = [
            r
            for r in splunk_results.JSONResultsReader(job.results(output_mode="json", count=10))
            if isinstance(r, dict)
        ]
        assert [r["host"] for r in rows] == ["WS-FIN-0142", "WS-FIN-0142"]
        updated = service.post(
            "notable_update", ruleUIDs=[notable], status=2, comment="triaged", output_mode="json"
        )
        assert updated.status == 200
    assert state.notables[notable].status == 2
    assert state.notables[notable].comments == ["triaged"]
    assert all(r.auth_valid and r.status < 400 for r in state.requests)


class _EntraToken:
    """An azure-core TokenCredential getting its token from the fake Entra
    endpoint by client credentials, as azure-identity would (without MSAL's
    discovery, which needs the real login.microsoftonline.com)."""

    def __init__(self, url: str, tenant: str, client: str, secret: str, verify: str) -> None:
        self._url, self._tenant, self._client, self._secret = url, tenant, client, secret
        self._verify = verify

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        resp = httpx.post(
            f"{self._url}/{self._tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._client,
                "client_secret": self._secret,
                "scope": " ".join(scopes),
            },
            verify=ssl.create_default_context(cafile=self._verify),
        )
        resp.raise_for_status()
        body = resp.json()
        return AccessToken(body["access_token"], int(time.time()) + body["expires_in"])


def test_the_azure_sdk_drives_the_sentinel_fake(tmp_path: Path) -> None:
    tenant, client, secret = str(uuid.uuid4()), str(uuid.uuid4()), "entra-app-secret~9f8e"
    workspace = (str(uuid.uuid4()), "soc-rg", "soc-workspace")
    state = SentinelState.demo(tenant, client, secret, workspace)
    cert, key = self_signed(tmp_path)
    # The SDK sends a bearer token over https only: the fake serves TLS.
    with serve_asgi(sentinel_app(state), tls=(cert, key)) as url:
        credential = _EntraToken(url, tenant, client, secret, str(cert))
        sdk = SecurityInsights(credential, workspace[0], base_url=url, connection_verify=str(cert))  # type: ignore[arg-type]
        incidents = list(sdk.incidents.list(workspace[1], workspace[2]))
        assert len(incidents) == 2
        first = incidents[0]
        got = sdk.incidents.get(workspace[1], workspace[2], first.name)
        assert got.title == first.title
        got.status, got.classification = "Closed", "TruePositive"
        got.classification_reason = "SuspiciousActivity"
        updated = sdk.incidents.create_or_update(workspace[1], workspace[2], first.name, got)
        assert updated.status == "Closed"
        comment = sdk.incident_comments.create_or_update(
            workspace[1],
            workspace[2],
            first.name,
            str(uuid.uuid4()),
            IncidentComment(message="closed by the SDK"),
        )
        assert comment.message == "closed by the SDK"
        sdk.close()
    assert state.incidents[first.name].status == "Closed"
    assert state.incidents[first.name].comments == ["closed by the SDK"]
    assert all(r.auth_valid and r.status < 400 for r in state.requests)
