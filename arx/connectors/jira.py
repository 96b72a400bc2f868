"""Atlassian Jira Cloud (REST v3): find, read, create and comment issues, and
move them through their workflow.

Auth is an Atlassian account's e-mail and API token (HTTP Basic). Jira's
conventions: rich text is the Atlassian Document Format (ARX turns the plain
text an agent sends into an ADF document), search is ``/search/jql`` with a
``nextPageToken`` (the old ``/search`` answers 410), errors are
``{"errorMessages": [...], "errors": {field: message}}``, and a 429 carries
``Retry-After`` in seconds.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final

import msgspec

from arx.connectors.auth import Basic, ConnectorAuth
from arx.connectors.registry import register
from arx.connectors.rest import RestConnector
from arx.connectors.types import ApiCall, CallContext, Operation, OperationKind
from arx.vault.secret import Secret

__all__ = ["JiraConnector", "JiraSecret"]


class JiraSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An Atlassian account's e-mail and one of its API tokens."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    api_token: Secret


IssueKey = Annotated[
    str,
    msgspec.Meta(pattern=r"^[A-Z][A-Z0-9_]{1,9}-[1-9][0-9]{0,8}(?!\n)$", description="e.g. SEC-24"),
]
_Strict = {"frozen": True, "kw_only": True, "forbid_unknown_fields": True}
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=32_000)]


class SearchParams(msgspec.Struct, **_Strict):
    """Issues matching JQL, a page at a time."""

    jql: Annotated[
        str, msgspec.Meta(min_length=1, max_length=2000, description="e.g. project = SEC")
    ]
    fields: Annotated[list[str], msgspec.Meta(min_length=1, max_length=50)] = msgspec.field(
        default_factory=lambda: ["summary", "status", "assignee"]
    )
    max_results: Annotated[int, msgspec.Meta(ge=1, le=100)] = 50
    next_page_token: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class IssueParams(msgspec.Struct, **_Strict):
    key: IssueKey


class CreateParams(msgspec.Struct, **_Strict):
    """A new issue: its project, type, summary and (plain text) description."""

    project: Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9_]{1,9}(?!\n)$", description="key")]
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    issue_type: Annotated[str, msgspec.Meta(min_length=1, max_length=60)] = "Task"
    description: Text | None = None


class CommentParams(msgspec.Struct, **_Strict):
    key: IssueKey
    body: Text


class TransitionParams(msgspec.Struct, **_Strict):
    key: IssueKey
    transition_id: Annotated[
        str, msgspec.Meta(pattern=r"^[0-9]{1,9}(?!\n)$", description="from issues:transitions")
    ]
    comment: Text | None = None


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document, a paragraph a line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def _search(p: SearchParams) -> ApiCall:
    body: dict[str, Any] = {"jql": p.jql, "fields": p.fields, "maxResults": p.max_results}
    if p.next_page_token:
        body["nextPageToken"] = p.next_page_token
    return ApiCall("POST", "/rest/api/3/search/jql", json=body)


def _create(p: CreateParams) -> ApiCall:
    fields: dict[str, Any] = {
        "project": {"key": p.project},
        "issuetype": {"name": p.issue_type},
        "summary": p.summary,
    }
    if p.description:
        fields["description"] = adf(p.description)
    return ApiCall("POST", "/rest/api/3/issue", json={"fields": fields})


def _transition(p: TransitionParams) -> ApiCall:
    body: dict[str, Any] = {"transition": {"id": p.transition_id}}
    if p.comment:
        body["update"] = {"comment": [{"add": {"body": adf(p.comment)}}]}
    return ApiCall("POST", f"/rest/api/3/issue/{p.key}/transitions", json=body)


_OPERATIONS: Final = (
    Operation(
        name="issues:search", params=SearchParams, kind=OperationKind.READ, base_risk=5,
        reversible=False, target_type="issue", build=_search,
        summary="Issues matching JQL; a page, and nextPageToken for the next one.",
    ),
    Operation(
        name="issues:get", params=IssueParams, kind=OperationKind.READ, base_risk=5,
        reversible=False, target_type="issue", target_param="key",
        build=lambda p: ApiCall("GET", f"/rest/api/3/issue/{p.key}"),
        summary="One issue with its fields (status, assignee, description).",
    ),
    Operation(
        name="issues:transitions", params=IssueParams, kind=OperationKind.READ, base_risk=5,
        reversible=False, target_type="issue", target_param="key",
        build=lambda p: ApiCall("GET", f"/rest/api/3/issue/{p.key}/transitions"),
        summary="The workflow transitions the issue can take now (their ids).",
    ),
    Operation(
        name="issues:create", params=CreateParams, kind=OperationKind.WRITE, base_risk=20,
        reversible=True, inverse="issues:transition", target_type="issue", build=_create,
        summary="Create an issue; undone by moving it to Done.",
    ),
    Operation(
        name="issues:comment", params=CommentParams, kind=OperationKind.WRITE, base_risk=15,
        reversible=True, target_type="issue", target_param="key",
        build=lambda p: ApiCall(
            "POST", f"/rest/api/3/issue/{p.key}/comment", json={"body": adf(p.body)}
        ),
        summary="Add a comment (plain text, sent as ADF); a comment can be deleted.",
    ),
    Operation(
        name="issues:transition", params=TransitionParams, kind=OperationKind.WRITE, base_risk=25,
        reversible=True, inverse="issues:transition", target_type="issue", target_param="key",
        build=_transition,
        summary="Move the issue through its workflow (optionally with a comment).",
    ),
)  # fmt: skip


@register
class JiraConnector(RestConnector):
    id: ClassVar[str] = "jira"
    vendor: ClassVar[str] = "Jira"
    auth_scheme: ClassVar[str] = "basic_api_token"
    secret_type: ClassVar[type[msgspec.Struct]] = JiraSecret
    # Every site has its own host (<site>.atlassian.net): the credential names it.
    default_base_url: ClassVar[str] = ""
    allowed_hosts: ClassVar[tuple[str, ...]] = ("*.atlassian.net",)
    operations: ClassVar[dict[str, Operation]] = {op.name: op for op in _OPERATIONS}

    def authenticate(self, secret: Any, context: CallContext) -> ConnectorAuth:
        return Basic(secret.email, secret.api_token)
