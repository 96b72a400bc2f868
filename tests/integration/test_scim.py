"""SCIM 2.0 provisioning (``/scim/v2/{org_id}``) against the real PostgreSQL.

The IdP's client is an admin token of the org holding the ``scim`` role.
Users are the org's memberships, groups named ``arx-<role>`` give roles
(read back through ``arx.effective_roles``, as the control plane does),
deactivation withdraws every role at once, every change leaves an audit
event, and errors are SCIM error bodies. Last, the external compliance
checker ``scim2-tester`` runs against the endpoints served by uvicorn on a
loopback port, through a real HTTP client.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import anyio
import httpx
import msgspec
import pytest
import uvicorn
from scim2_client import BaseSyncSCIMClient
from scim2_client.client import RawResponse
from scim2_tester import CheckConfig, Status, check_server
from scim2_tester.checkers import core_schemas_validation
from scim2_tester.utils import CheckContext

from arx.admin.orgs import bootstrap, create_org
from arx.admin.people import create_token
from arx.admin.types import Bootstrap
from arx.api.app import create_app
from arx.audit.query import AuditFilter
from arx.audit.reads import list_events
from arx.audit.service import result_overdue_seconds
from arx.audit.types import AuditEvent
from arx.config import Settings
from arx.db.pool import org_transaction
from arx.devstack.ports import free_port
from arx.identity.principal import Access, Principal, PrincipalKind
from arx.runtime import Runtime

pytestmark = pytest.mark.anyio

SCIM_JSON = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BOOTSTRAPPER = Principal(kind=PrincipalKind.BOOTSTRAP, id="bootstrap", name="bootstrap")


@dataclasses.dataclass(frozen=True)
class Org:
    id: UUID
    owner: Access  # the owner's access, to make tokens and read the trail
    scim: dict[str, str]  # headers of the IdP's SCIM client

    @property
    def base(self) -> str:
        return f"/scim/v2/{self.id}"


async def _token(runtime: Runtime, owner: Access, roles: list[str]) -> dict[str, str]:
    issued = await create_token(
        runtime.control_pool, owner, name="-".join(roles), roles=roles, lifetime=None
    )
    return {"authorization": f"Bearer {issued.token}", "content-type": SCIM_JSON}


async def _first_org(runtime: Runtime) -> Org:
    done = await bootstrap(
        runtime.control_pool,
        Bootstrap(org_slug="acme", org_name="Acme", owner_email="owner@acme.test"),
        actor=BOOTSTRAPPER,
    )
    owner = Access(principal=BOOTSTRAPPER, org_id=done.org.id, roles=frozenset({"owner"}))
    return Org(id=done.org.id, owner=owner, scim=await _token(runtime, owner, ["scim"]))


async def _second_org(runtime: Runtime, first: Org) -> Org:
    """Another org, made by the first org's owner (who is thus its owner too)."""
    async with org_transaction(runtime.control_pool, first.id) as conn:
        cur = await conn.execute("SELECT user_id FROM arx.memberships")
        row = await cur.fetchone()
    assert row is not None
    person = Principal(kind=PrincipalKind.USER, id=str(row[0]), name="owner@acme.test")
    org = await create_org(runtime.control_pool, slug="globex", name="Globex", creator=person)
    owner = Access(principal=person, org_id=org.id, roles=frozenset({"owner"}))
    return Org(id=org.id, owner=owner, scim=await _token(runtime, owner, ["scim"]))


@pytest.fixture
async def org(runtime: Runtime) -> Org:
    return await _first_org(runtime)


async def _roles(runtime: Runtime, org_id: UUID, user_id: str) -> list[str]:
    async with org_transaction(runtime.control_pool, org_id) as conn:
        cur = await conn.execute("SELECT arx.effective_roles(%s, %s)", (org_id, UUID(user_id)))
        row = await cur.fetchone()
    assert row is not None
    return list(row[0])


async def _trail(runtime: Runtime, org: Org) -> list[AuditEvent]:
    """The org's events, oldest first."""
    page = await list_events(
        runtime.control_pool,
        org.id,
        AuditFilter(),
        limit=1000,
        overdue_seconds=result_overdue_seconds(runtime.settings),
    )
    return page.events[::-1]


async def _actions(runtime: Runtime, org: Org) -> list[str]:
    events = await _trail(runtime, org)
    return [e.action for e in events if e.action and e.action.startswith("scim.")]


def _scim_error(resp: httpx.Response, status: int, scim_type: str | None = None) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(SCIM_JSON)
    body = resp.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    detail: str = body["detail"]
    return detail


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def _create_user(
    client: httpx.AsyncClient, org: Org, user_name: str, **extra: Any
) -> dict[str, Any]:
    resp = await client.post(
        f"{org.base}/Users",
        json={"schemas": [USER], "userName": user_name, **extra},
        headers=org.scim,
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _ids(client: httpx.AsyncClient, org: Org, query: str) -> set[str]:
    resp = await client.get(f"{org.base}/Users", params={"filter": query}, headers=org.scim)
    assert resp.status_code == 200, resp.text
    return {u["id"] for u in resp.json().get("Resources", [])}


# --- users --------------------------------------------------------------------------------


async def test_users_are_created_read_filtered_and_paged(
    client: httpx.AsyncClient, org: Org
) -> None:
    jane = await _create_user(
        client,
        org,
        "Jane@Acme.test",
        externalId="okta-1",
        name={"givenName": "Jane", "familyName": "Doe"},
        emails=[{"value": "jane.doe@acme.test", "type": "work", "primary": True}],
    )
    assert jane["userName"] == "Jane@Acme.test"
    assert jane["displayName"] == "Jane Doe"  # made of name, which ARX does not keep
    assert jane["emails"] == [{"value": "jane.doe@acme.test", "type": "work"}]
    assert jane["active"] is True
    assert jane["meta"]["resourceType"] == "User"
    assert jane["meta"]["location"].endswith(f"{org.base}/Users/{jane['id']}")
    bob = await _create_user(client, org, "bob@acme.test", active=False, displayName="Bob")
    assert bob["emails"] == [{"value": "bob@acme.test", "type": "work"}]  # from userName
    others = [await _create_user(client, org, f"user{i}@acme.test") for i in range(3)]

    got = await client.get(f"{org.base}/Users/{jane['id']}", headers=org.scim)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith(SCIM_JSON)
    assert got.json() == jane

    # IdPs look users up before each change: case-insensitive userName, exact externalId.
    assert await _ids(client, org, 'userName eq "jane@acme.test"') == {jane["id"]}
    assert await _ids(client, org, 'externalId eq "okta-1"') == {jane["id"]}
    assert await _ids(client, org, 'externalId eq "OKTA-1"') == set()
    assert await _ids(client, org, 'emails.value eq "JANE.DOE@acme.test"') == {jane["id"]}
    assert await _ids(client, org, f'id eq "{bob["id"]}"') == {bob["id"]}
    assert await _ids(client, org, 'id eq "not-a-uuid"') == set()
    assert await _ids(client, org, 'userName co "ser1"') == {others[1]["id"]}
    assert await _ids(client, org, 'userName sw "BOB"') == {bob["id"]}
    assert await _ids(client, org, "externalId pr") == {jane["id"]}
    assert await _ids(client, org, "active eq false") == {bob["id"]}
    assert await _ids(client, org, 'displayName eq "bob" or userName ew "user2@acme.test"') == {
        bob["id"],
        others[2]["id"],
    }
    assert await _ids(client, org, 'active eq true and emails[value sw "user"]') == {
        u["id"] for u in others
    }

    # The bootstrap owner is a user of the org too: six in all, paged two at a time.
    seen: list[str] = []
    for start in (1, 3, 5):
        resp = await client.get(
            f"{org.base}/Users", params={"startIndex": start, "count": 2}, headers=org.scim
        )
        page = resp.json()
        assert page["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (6, start, 2)
        seen += [u["id"] for u in page["Resources"]]
    assert len(set(seen)) == 6
    counted = await client.get(f"{org.base}/Users", params={"count": 0}, headers=org.scim)
    assert counted.json()["totalResults"] == 6
    assert counted.json().get("Resources", []) == []
    capped = await client.get(f"{org.base}/Users", params={"count": 10_000}, headers=org.scim)
    assert capped.json()["itemsPerPage"] == 6
    projected = await client.get(
        f"{org.base}/Users",
        params={"filter": 'userName eq "bob@acme.test"', "attributes": "userName"},
        headers=org.scim,
    )
    assert projected.json()["Resources"] == [
        {"schemas": [USER], "id": bob["id"], "userName": "bob@acme.test"}
    ]

    # The same query as a POST to .search, ordered; and at the root, groups too.
    searched = await client.post(
        f"{org.base}/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "user"',
            "sortBy": "userName",
            "sortOrder": "descending",
        },
        headers=org.scim,
    )
    assert [u["userName"] for u in searched.json()["Resources"]] == [
        "user2@acme.test",
        "user1@acme.test",
        "user0@acme.test",
    ]
    await client.post(
        f"{org.base}/Groups", json={"schemas": [GROUP], "displayName": "Bobs"}, headers=org.scim
    )
    everything = await client.post(
        f"{org.base}/.search", json={"filter": 'displayName sw "bob"'}, headers=org.scim
    )
    assert [(r["schemas"], r["displayName"]) for r in everything.json()["Resources"]] == [
        ([USER], "Bob"),
        ([GROUP], "Bobs"),
    ]

    # userName is unique in the org without regard to case; so is the person.
    dup = await client.post(
        f"{org.base}/Users",
        json={"schemas": [USER], "userName": "JANE@acme.test"},
        headers=org.scim,
    )
    _scim_error(dup, 409, "uniqueness")
    same_person = await client.post(
        f"{org.base}/Users",
        json={"schemas": [USER], "userName": "jd", "emails": [{"value": "jane.doe@acme.test"}]},
        headers=org.scim,
    )
    _scim_error(same_person, 409, "uniqueness")


async def test_put_replaces_and_patch_updates_as_idps_send_them(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    user = await _create_user(client, org, "sam@acme.test", displayName="Sam", externalId="x1")
    url = f"{org.base}/Users/{user['id']}"

    # PUT replaces: what it leaves out is cleared (active and the email are kept).
    put = await client.put(
        url, json={"schemas": [USER], "userName": "sam@acme.test"}, headers=org.scim
    )
    assert put.status_code == 200, put.text
    assert "displayName" not in put.json()
    assert "externalId" not in put.json()
    assert put.json()["active"] is True

    # Entra: capitalised ops, a string boolean, a filtered email path.
    entra = await client.patch(
        url,
        json=_patch(
            {"op": "Replace", "path": "displayName", "value": "Samuel"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "samuel@acme.test"},
            {"op": "Replace", "path": "name.givenName", "value": "Samuel"},  # dropped
            {"op": "Add", "path": "externalId", "value": "entra-9"},
        ),
        headers=org.scim,
    )
    assert entra.status_code == 200, entra.text
    assert entra.json()["displayName"] == "Samuel"
    assert entra.json()["emails"] == [{"value": "samuel@acme.test", "type": "work"}]
    assert entra.json()["externalId"] == "entra-9"
    # Okta: no path, a value object.
    okta = await client.patch(
        url,
        json=_patch({"op": "replace", "value": {"userName": "samuel@acme.test"}}),
        headers=org.scim,
    )
    assert okta.json()["userName"] == "samuel@acme.test"
    removed = await client.patch(
        url, json=_patch({"op": "remove", "path": "externalId"}), headers=org.scim
    )
    assert "externalId" not in removed.json()

    # What ARX cannot hold unassigned, or would have to make up, is refused.
    for op, status, scim_type in (
        ({"op": "remove", "path": "userName"}, 400, "mutability"),
        ({"op": "remove", "path": "emails"}, 400, "mutability"),
        (
            {"op": "replace", "path": "emails", "value": [{"value": "not-an-email"}]},
            400,
            "invalidValue",
        ),
        ({"op": "replace", "path": "active", "value": "maybe"}, 400, "invalidValue"),
        ({"op": "replace", "path": "members[", "value": 1}, 400, "invalidPath"),
        ({"op": "move", "path": "userName"}, 400, "invalidValue"),
        ({"op": "replace", "path": "userName", "value": "x" * 201}, 400, "invalidValue"),
    ):
        resp = await client.patch(url, json=_patch(op), headers=org.scim)
        assert resp.status_code == status, (op, resp.text)
        assert resp.json().get("scimType") == scim_type, (op, resp.text)
    # Each change was recorded once, refusals not at all; a no-op records nothing.
    recorded = ["scim.user.created", *["scim.user.updated"] * 4]
    assert await _actions(runtime, org) == recorded
    before = await client.get(url, headers=org.scim)
    same = await client.patch(
        url,
        json=_patch({"op": "replace", "path": "displayName", "value": "Samuel"}),
        headers=org.scim,
    )
    assert same.json() == before.json()
    assert await _actions(runtime, org) == recorded
    events = await _trail(runtime, org)
    put_event = next(e for e in events if e.action == "scim.user.updated")
    assert put_event.details == {
        "user_id": user["id"],
        "user_name": "sam@acme.test",
        "changes": {
            "external_id": {"before": "x1", "after": None},
            "display_name": {"before": "Sam", "after": ""},
        },
    }


async def test_deactivation_withdraws_every_role_at_once(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    user = await _create_user(client, org, "rita@acme.test")
    uid, url = user["id"], f"{org.base}/Users/{user['id']}"
    group = await client.post(
        f"{org.base}/Groups",
        json={"schemas": [GROUP], "displayName": "arx-reviewer", "members": [{"value": uid}]},
        headers=org.scim,
    )
    assert group.status_code == 201, group.text
    assert await _roles(runtime, org.id, uid) == ["reviewer"]
    assert (await client.get(url, headers=org.scim)).json()["groups"] == [
        {
            "value": group.json()["id"],
            "$ref": group.json()["meta"]["location"],
            "display": "arx-reviewer",
        }
    ]

    off = await client.patch(
        url, json=_patch({"op": "Replace", "path": "active", "value": "False"}), headers=org.scim
    )
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    assert await _roles(runtime, org.id, uid) == []
    # Still a member (of the org and of the group): only access ended.
    assert (await client.get(url, headers=org.scim)).json()["groups"]

    on = await client.patch(
        url, json=_patch({"op": "replace", "value": {"active": True}}), headers=org.scim
    )
    assert on.json()["active"] is True
    assert await _roles(runtime, org.id, uid) == ["reviewer"]
    assert await _actions(runtime, org) == [
        "scim.user.created",
        "scim.group.created",
        "scim.user.deactivated",
        "scim.user.reactivated",
    ]


async def test_groups_map_to_roles_and_members_come_and_go(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    ann = (await _create_user(client, org, "ann@acme.test"))["id"]
    ben = (await _create_user(client, org, "ben@acme.test"))["id"]
    made = await client.post(
        f"{org.base}/Groups",
        json={"schemas": [GROUP], "displayName": "Engineering"},
        headers=org.scim,
    )
    assert made.status_code == 201, made.text
    assert made.headers["location"] == made.json()["meta"]["location"]
    url = f"{org.base}/Groups/{made.json()['id']}"

    added = await client.patch(
        url,
        json=_patch({"op": "add", "path": "members", "value": [{"value": ann}, {"value": ben}]}),
        headers=org.scim,
    )
    assert {m["value"] for m in added.json()["members"]} == {ann, ben}
    assert await _roles(runtime, org.id, ann) == []  # not a role group

    # Renaming the group to arx-reviewer gives its members the role at once.
    renamed = await client.patch(
        url,
        json=_patch({"op": "replace", "path": "displayName", "value": "arx-reviewer"}),
        headers=org.scim,
    )
    assert renamed.status_code == 200, renamed.text
    assert await _roles(runtime, org.id, ann) == ["reviewer"]
    assert await _roles(runtime, org.id, ben) == ["reviewer"]

    # RFC 7644's filtered removal, then Entra's removal by value.
    gone = await client.patch(
        url, json=_patch({"op": "remove", "path": f'members[value eq "{ann}"]'}), headers=org.scim
    )
    assert [m["value"] for m in gone.json()["members"]] == [ben]
    assert await _roles(runtime, org.id, ann) == []
    entra = await client.patch(
        url,
        json=_patch({"op": "Remove", "path": "members", "value": [{"value": ben}]}),
        headers=org.scim,
    )
    assert "members" not in entra.json()
    assert await _roles(runtime, org.id, ben) == []

    # PUT sets the members; excludedAttributes leaves them out of the answer.
    put = await client.put(
        url,
        params={"excludedAttributes": "members"},
        json={"schemas": [GROUP], "displayName": "arx-reviewer", "members": [{"value": ben}]},
        headers=org.scim,
    )
    assert put.status_code == 200, put.text
    assert "members" not in put.json()
    assert await _roles(runtime, org.id, ben) == ["reviewer"]

    # Names are unique without regard to case; members must be users of the org.
    _scim_error(
        await client.post(
            f"{org.base}/Groups",
            json={"schemas": [GROUP], "displayName": "ARX-REVIEWER"},
            headers=org.scim,
        ),
        409,
        "uniqueness",
    )
    stranger = "6f0a4f0e-0000-4000-8000-000000000000"
    for value in (stranger, "not-a-uuid"):
        _scim_error(
            await client.patch(
                url,
                json=_patch({"op": "add", "path": "members", "value": [{"value": value}]}),
                headers=org.scim,
            ),
            400,
            "invalidValue",
        )
    listed = await client.get(
        f"{org.base}/Groups", params={"filter": 'displayName eq "arx-REVIEWER"'}, headers=org.scim
    )
    assert [g["id"] for g in listed.json()["Resources"]] == [made.json()["id"]]

    deleted = await client.delete(url, headers=org.scim)
    assert deleted.status_code == 204
    assert await _roles(runtime, org.id, ben) == []
    _scim_error(await client.get(url, headers=org.scim), 404)
    events = await _trail(runtime, org)
    group_events = [e for e in events if e.action and e.action.startswith("scim.group.")]
    assert [e.action for e in group_events] == [
        "scim.group.created",
        *["scim.group.updated"] * 5,
        "scim.group.deleted",
    ]
    assert group_events[2].details["roles"] == ["reviewer"]  # the rename
    assert all(e.actor and e.actor.startswith("token:") for e in group_events)


async def test_delete_removes_the_membership_and_its_groups(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    uid = (await _create_user(client, org, "leo@acme.test"))["id"]
    group = await client.post(
        f"{org.base}/Groups",
        json={"schemas": [GROUP], "displayName": "arx-auditor", "members": [{"value": uid}]},
        headers=org.scim,
    )
    assert await _roles(runtime, org.id, uid) == ["auditor"]
    assert (await client.delete(f"{org.base}/Users/{uid}", headers=org.scim)).status_code == 204
    _scim_error(await client.get(f"{org.base}/Users/{uid}", headers=org.scim), 404)
    _scim_error(await client.delete(f"{org.base}/Users/{uid}", headers=org.scim), 404)
    assert (
        "members"
        not in (
            await client.get(f"{org.base}/Groups/{group.json()['id']}", headers=org.scim)
        ).json()
    )
    assert await _roles(runtime, org.id, uid) == []
    # The person can be provisioned again (the same id: they are found by email).
    again = await _create_user(client, org, "leo@acme.test")
    assert again["id"] == uid
    assert "groups" not in again
    assert (await _actions(runtime, org))[-2:] == ["scim.user.deleted", "scim.user.created"]


async def test_a_sign_in_email_another_org_relies_on_is_not_changed(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    other = await _second_org(runtime, org)
    shared = await _create_user(client, org, "pat@acme.test")
    await _create_user(client, other, "pat@acme.test")  # the same person: found by email
    change = _patch({"op": "replace", "path": "emails", "value": [{"value": "evil@x.test"}]})
    _scim_error(
        await client.patch(f"{org.base}/Users/{shared['id']}", json=change, headers=org.scim),
        400,
        "mutability",
    )
    # A person only this org has may have their email changed by its IdP.
    own = await _create_user(client, org, "kim@acme.test")
    resp = await client.patch(f"{org.base}/Users/{own['id']}", json=change, headers=org.scim)
    assert resp.json()["emails"] == [{"value": "evil@x.test", "type": "work"}]
    # But not to the address of another person.
    taken = _patch({"op": "replace", "path": "emails", "value": [{"value": "PAT@acme.test"}]})
    _scim_error(
        await client.patch(f"{org.base}/Users/{own['id']}", json=taken, headers=org.scim),
        409,
        "uniqueness",
    )


# --- who may call, and how errors look ---------------------------------------------------


async def test_only_the_orgs_scim_token_gets_in(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    other = await _second_org(runtime, org)
    users = f"{org.base}/Users"
    # Another org's SCIM token: as if the org did not exist.
    _scim_error(await client.get(users, headers=other.scim), 404)
    # An admin token of the org without the scim role.
    admin = await _token(runtime, org.owner, ["admin"])
    _scim_error(await client.get(users, headers=admin), 403)
    _scim_error(await client.get(users), 401)
    no_token = await client.get(users)
    assert no_token.headers["www-authenticate"].startswith("Bearer")


async def test_bad_requests_are_scim_errors_never_500s(client: httpx.AsyncClient, org: Org) -> None:
    users = f"{org.base}/Users"
    for bad in ("userName eq", 'userName xx "a"', 'nosuch eq "x"', 'active eq "x"', "((", "\x00"):
        resp = await client.get(users, params={"filter": bad}, headers=org.scim)
        _scim_error(resp, 400, "invalidFilter")
    _scim_error(
        await client.get(users, params={"count": "many"}, headers=org.scim), 400, "invalidValue"
    )
    _scim_error(
        await client.get(users, params={"sortBy": "nosuch"}, headers=org.scim), 400, "invalidPath"
    )
    _scim_error(
        await client.post(users, content=b"{not json", headers=org.scim), 400, "invalidSyntax"
    )
    _scim_error(await client.post(users, content=b"[]", headers=org.scim), 400, "invalidSyntax")
    _scim_error(
        await client.post(users, json={"schemas": [USER]}, headers=org.scim), 400, "invalidValue"
    )
    _scim_error(
        await client.post(
            users, json={"schemas": [USER], "userName": "no-email"}, headers=org.scim
        ),
        400,
        "invalidValue",
    )
    _scim_error(
        await client.post(
            users, json={"schemas": [USER], "userName": "a\x00@b.test"}, headers=org.scim
        ),
        400,
        "invalidValue",
    )
    plain = {**org.scim, "content-type": "text/plain"}
    _scim_error(await client.post(users, content=b"{}", headers=plain), 415)
    for missing in ("6f0a4f0e-0000-4000-8000-000000000000", "nope"):
        _scim_error(await client.get(f"{users}/{missing}", headers=org.scim), 404)
    _scim_error(await client.get(f"{org.base}/NoSuchThing", headers=org.scim), 404)
    # application/json is accepted as well as application/scim+json.
    ok = await client.post(
        users,
        json={"schemas": [USER], "userName": "json@acme.test"},
        headers={**org.scim, "content-type": "application/json"},
    )
    assert ok.status_code == 201, ok.text


async def test_discovery_describes_what_arx_keeps(client: httpx.AsyncClient, org: Org) -> None:
    spc = (await client.get(f"{org.base}/ServiceProviderConfig", headers=org.scim)).json()
    assert spc["patch"] == {"supported": True}
    assert spc["filter"] == {"supported": True, "maxResults": 200}
    assert spc["bulk"]["supported"] is False
    types = (await client.get(f"{org.base}/ResourceTypes", headers=org.scim)).json()
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    user = (await client.get(f"{org.base}/Schemas/{USER}", headers=org.scim)).json()
    assert {a["name"] for a in user["attributes"]} == {
        "userName",
        "displayName",
        "active",
        "emails",
        "groups",
    }
    _scim_error(await client.get(f"{org.base}/Schemas/urn:nope", headers=org.scim), 404)
    assert (await client.post(f"{org.base}/Schemas", headers=org.scim, json={})).status_code == 405


# --- the compliance checker, over the network --------------------------------------------


class _HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's engine for httpx's synchronous client (it ships one for httpx2)."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url = self.client.build_request("GET", endpoint).url
        base = self.client.base_url
        return url.host == base.host and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: RawResponse) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)


@pytest.fixture
def live(settings: Settings) -> Iterator[str]:
    """ARX under uvicorn on a loopback port, with its own runtime (and event loop)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(msgspec.structs.replace(settings, public_url=base))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, ws="none", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=20)


async def test_scim2_tester_finds_no_failure(live: str, runtime: Runtime, org: Org) -> None:
    def run() -> list[Any]:
        headers = {"authorization": org.scim["authorization"]}
        with httpx.Client(base_url=f"{live}{org.base}", headers=headers, timeout=30) as http:
            scim = _HttpxSCIMClient(http)
            found = check_server(scim)
            # Not part of check_server's run: the three discovery schemas are published.
            return found + core_schemas_validation(CheckContext(scim, CheckConfig()))

    results = await anyio.to_thread.run_sync(run)
    counts = Counter(r.status.name for r in results)
    print("scim2-tester:", dict(sorted(counts.items())), f"({len(results)} checks)")
    for r in results:
        if r.status is not Status.SUCCESS:
            print(f"  {r.status.name} {r.resource_type or '-'} {r.title}: {r.reason}")
    failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert not failed, "\n".join(f"{r.resource_type} {r.title}: {r.reason}" for r in failed)
