"""Splunk Enterprise / Splunk Cloud: search jobs (create, poll, results,
cancel) and Enterprise Security's notable event update, over the management
port (8089). SPL can write (``outputlookup``, ``collect``, ``delete``) and
send data out (``sendemail``): any SPL is ``search:create``, a write;
``search:query`` runs one ``search`` command only, and is a read.

Auth is a Splunk authentication token (``Authorization: Bearer <JWT>``) or a
user and password, logged in at ``/services/auth/login`` for a session key
(``Authorization: Splunk <key>``) that every call of the credential version
shares until it is refused. Every call asks ``output_mode=json``; errors are
``{"messages": [{"type": "ERROR", "text": ...}]}``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final

import httpx
import msgspec

from arx.connectors.auth import ConnectorAuth, StaticToken, TokenCache, TokenRequest, TokenSource
from arx.connectors.registry import register
from arx.connectors.rest import Failure, RestConnector
from arx.connectors.types import ApiCall, CallContext, Operation, OperationKind
from arx.vault.secret import Secret, secret_dec_hook

__all__ = ["SplunkConnector", "SplunkSecret"]

# Splunk's default session timeout is an hour; a session key is reused for
# less, and dropped at once if Splunk refuses it.
SESSION_SECONDS: Final = 3000.0


class SplunkSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A Splunk authentication token, or a user and password (not both)."""

    token: Secret | None = None
    username: str | None = None
    password: Secret | None = None

    def __post_init__(self) -> None:
        if (self.token is None) == (self.username is None or self.password is None):
            raise ValueError("give either token, or username and password")


# A search id: Splunk's own ("1704067200.12345", "scheduler__admin__…"); never a path.
Sid = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.@-]{0,199}(?!\n)$", description="search id"
    ),
]
_Strict = {"frozen": True, "kw_only": True, "forbid_unknown_fields": True}
Time = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9@:.+-]{1,40}(?!\n)$", description="e.g. -24h")
]


class SearchParams(msgspec.Struct, **_Strict):
    """Start a search job (any SPL); poll it with search:status."""

    search: Annotated[
        str, msgspec.Meta(min_length=1, max_length=10_000, description="e.g. search index=main")
    ]
    earliest_time: Time | None = None
    latest_time: Time | None = None


class QueryParams(msgspec.Struct, **_Strict):
    """Start a search job of one ``search`` command: no pipeline, subsearch or
    macro, so nothing it runs can write, delete, or send data out."""

    search: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^search [^|\[\]`\n]{1,9990}(?!\n)$",
            description="e.g. search index=main user=ana.ruiz (no |, [ ], or macros)",
        ),
    ]
    earliest_time: Time | None = None
    latest_time: Time | None = None


class JobParams(msgspec.Struct, **_Strict):
    sid: Sid


class ResultsParams(msgspec.Struct, **_Strict):
    sid: Sid
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0


class NotableParams(msgspec.Struct, **_Strict):
    """Update notable events (Enterprise Security): status, urgency, owner, comment."""

    rule_uids: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9@:._-]{1,200}(?!\n)$")]],
        msgspec.Meta(min_length=1, max_length=100, description="notable event ids"),
    ]
    status: (
        Annotated[int, msgspec.Meta(ge=0, le=99, description="ES status id, e.g. 2 in progress")]
        | None
    ) = None
    urgency: (
        Annotated[str, msgspec.Meta(pattern=r"^(informational|low|medium|high|critical)(?!\n)$")]
        | None
    ) = None
    new_owner: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9@._-]{1,100}(?!\n)$")] | None = None
    comment: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None


def _create(p: SearchParams | QueryParams) -> ApiCall:
    form = [("search", p.search), ("output_mode", "json"), ("exec_mode", "normal")]
    form += [
        (k, v) for k, v in (("earliest_time", p.earliest_time), ("latest_time", p.latest_time)) if v
    ]
    return ApiCall("POST", "/services/search/jobs", form=tuple(form))


def _notable(p: NotableParams) -> ApiCall:
    form = [("ruleUIDs", uid) for uid in p.rule_uids] + [("output_mode", "json")]
    for name, value in (
        ("status", p.status),
        ("urgency", p.urgency),
        ("newOwner", p.new_owner),
        ("comment", p.comment),
    ):
        if value is not None:
            form.append((name, str(value)))
    return ApiCall("POST", "/services/notable_update", form=tuple(form))


_JSON: Final = (("output_mode", "json"),)

_OPERATIONS: Final = (
    Operation(
        name="search:query",
        params=QueryParams,
        kind=OperationKind.READ,
        base_risk=10,
        reversible=False,
        target_type="search",
        build=_create,
        summary="Start a job of one search command (no pipeline: it cannot write); its sid.",
    ),
    Operation(
        name="search:create",
        params=SearchParams,
        kind=OperationKind.WRITE,
        base_risk=30,
        reversible=True,
        inverse="search:cancel",
        target_type="search",
        build=_create,
        summary="Start a job of any SPL (which may write: outputlookup, collect, sendemail).",
    ),
    Operation(
        name="search:cancel",
        params=JobParams,
        kind=OperationKind.WRITE,
        base_risk=10,
        reversible=False,
        target_type="search",
        target_param="sid",
        build=lambda p: ApiCall("DELETE", f"/services/search/jobs/{p.sid}", _JSON),
        summary="Cancel a search job and delete its results.",
    ),
    Operation(
        name="search:status",
        params=JobParams,
        kind=OperationKind.READ,
        base_risk=5,
        reversible=False,
        target_type="search",
        target_param="sid",
        build=lambda p: ApiCall("GET", f"/services/search/jobs/{p.sid}", _JSON),
        summary="A search job's state (dispatchState, isDone, resultCount).",
    ),
    Operation(
        name="search:results",
        params=ResultsParams,
        kind=OperationKind.READ,
        base_risk=10,
        reversible=False,
        target_type="search",
        target_param="sid",
        build=lambda p: ApiCall(
            "GET",
            f"/services/search/jobs/{p.sid}/results",
            (*_JSON, ("count", str(p.count)), ("offset", str(p.offset))),
        ),
        summary="A page of a finished search job's results.",
    ),
    Operation(
        name="notable:update",
        params=NotableParams,
        kind=OperationKind.WRITE,
        base_risk=25,
        reversible=True,
        inverse="notable:update",
        target_type="notable",
        target_param="rule_uids",
        build=_notable,
        summary="Set notable events' status, urgency or owner, with a comment (ES).",
    ),
)


class _Message(msgspec.Struct):
    text: str = ""
    type: str = ""


class _Messages(msgspec.Struct):
    messages: list[_Message] | None = None


class _Login(msgspec.Struct):
    sessionKey: Secret


def _session_key(body: bytes) -> tuple[Secret, float]:
    login = msgspec.json.decode(body, type=_Login, dec_hook=secret_dec_hook)
    return login.sessionKey, SESSION_SECONDS


@register
class SplunkConnector(RestConnector):
    id: ClassVar[str] = "splunk"
    vendor: ClassVar[str] = "Splunk"
    auth_scheme: ClassVar[str] = "token_or_session"
    secret_type: ClassVar[type[msgspec.Struct]] = SplunkSecret
    # On-premises hosts are the org's own (an org admin adds them); Splunk Cloud's:
    default_base_url: ClassVar[str] = ""
    allowed_hosts: ClassVar[tuple[str, ...]] = ("*.splunkcloud.com",)
    operations: ClassVar[dict[str, Operation]] = {op.name: op for op in _OPERATIONS}

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(http)
        self.sessions = TokenCache()

    def authenticate(self, secret: Any, context: CallContext) -> ConnectorAuth:
        if secret.token is not None:
            return StaticToken(secret.token, template="Bearer {}")
        base = context.base_url.rstrip("/")
        login = TokenRequest(
            url=f"{base}/services/auth/login",
            form={"username": secret.username, "password": secret.password, "output_mode": "json"},
            vendor=self.vendor,
            read=_session_key,
        )
        return TokenSource(
            self.sessions,
            (context.credential_key, base),
            login,
            template="Splunk {}",
            errors=lambda response: {"errors": self.failure(response).messages[:1]},
        )

    def failure(self, response: httpx.Response) -> Failure:
        try:
            body = msgspec.json.decode(response.content, type=_Messages)
        except msgspec.DecodeError:
            return Failure([], {})
        return Failure([m.text for m in body.messages or [] if m.text], {})
