"""What the OpenAPI document says about each route, derived, never copied.

Guarantee: for every route the document names its request body (including
the bodies routes decode themselves, strictly, through ``arx.api.body``),
every status it can answer with and that answer's media type, the security
scheme it checks and the headers that matter. Error answers share one
``Problem`` schema (``application/problem+json``); which codes a status
carries is read from the error tree (``arx.errors``), and the execute body
from the connectors' operation tables, so neither can drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    SecurityScheme,
)

from arx.api.problems import HTTP_CODES, MEDIA_TYPE
from arx.api.types import Problem
from arx.connectors.catalog import connectors
from arx.errors import ARXError
from arx.vault.secret import secret_schema_hook

# Names of the security schemes (not secrets).
AGENT_KEY = "AgentKey"
ADMIN_TOKEN = "AdminToken"  # noqa: S105 -- a scheme name, not a token
BOOTSTRAP_TOKEN = "BootstrapToken"  # noqa: S105 -- a scheme name, not a token
JSON = "application/json"

# PostgreSQL cannot store a NUL character in text or jsonb, so ARX refuses
# one in any string it records (a 422). Said in the schema so that generated
# "valid" bodies are really valid.
NO_NUL = r"^[^\x00]*$"


# --- components ----------------------------------------------------------------


def _header(description: str, schema: dict[str, Any]) -> OpenAPIHeader:
    return OpenAPIHeader(description=description, schema=schema)  # type: ignore[arg-type]


# Response headers; inlined in each response (a $ref cannot say "required").
_HEADERS: dict[str, OpenAPIHeader] = {
    "X-Request-ID": _header(
        "ARX's id of this request, new for every request: also in every problem body "
        "(request_id), every log line and every audit event the request wrote. Never the "
        "caller's own X-Request-ID, which is kept beside it (X-Client-Request-ID).",
        {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,64}$"},
    ),
    "X-Client-Request-ID": _header(
        "The caller's own X-Request-ID, echoed when it sent a well-formed one (1-64 of "
        "A-Za-z0-9._-; anything else is dropped, neither echoed nor kept). It is stored "
        "beside ARX's request id (client_request_id) in every audit event and log line "
        "of the request, so that either id finds the other.",
        {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,64}$"},
    ),
    "Retry-After": _header("Seconds to wait before retrying.", {"type": "integer", "minimum": 0}),
    "Location": _header(
        "Where to poll the approval (the same URL as the body's poll_url).",
        {"type": "string", "pattern": "^/v1/sdk/approvals/"},
    ),
    "Idempotent-Replayed": _header(
        "Present on a retry with an Idempotency-Key: the first response, replayed.",
        {"type": "string", "enum": ["true"]},
    ),
    "WWW-Authenticate": _header("The scheme to authenticate with.", {"type": "string"}),
    "Preference-Applied": _header(
        "The request was held this many seconds for reviewers (Prefer: wait) and they "
        "have not decided yet.",
        {"type": "string", "pattern": "^wait=[0-9]+$"},
    ),
}

SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    AGENT_KEY: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="arx_<16 hex key id>_<secret>",
        description="An agent's ARX API key, issued by the admin API (shown once).",
    ),
    ADMIN_TOKEN: SecurityScheme(
        type="http",
        scheme="bearer",
        description="A person's or a machine's credential for one org: an org admin token "
        "(arxadm_<16 hex id>_<secret>, scoped to roles) or an access token (JWT) from the "
        "deployment's OpenID provider. The requirement lists the roles the route accepts "
        "in the org of its path; a credential of another org gets 404 as if the org did "
        "not exist.",
    ),
    BOOTSTRAP_TOKEN: SecurityScheme(
        type="http",
        scheme="bearer",
        description="The deployment's bootstrap token (ARX_BOOTSTRAP_TOKEN): creates the "
        "first org and its owner, and is refused for everything once an owner exists.",
    ),
}

IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    description="1-255 printable ASCII characters, unique per request and agent, kept 24 h. "
    "A retry with the same key and the same request replays the first response "
    "(Idempotent-Replayed: true) instead of running the operation again; the same key with "
    "a different request is a 422, while the first is still running a 409.",
    # HTTP drops leading and trailing spaces of a header value: a key has none.
    schema={"type": "string", "pattern": r"^[!-~]([ -~]{0,253}[!-~])?$"},  # type: ignore[arg-type]
)


PREFER = Parameter(
    name="Prefer",
    param_in="header",
    required=False,
    description="RFC 7240. `wait=N` (0-60): when policy escalates, hold the answer up to N "
    "seconds for reviewers. Approved meanwhile, the call runs (once, as a resume would) and "
    "answers 200; rejected or expired, 403 with the reviewers' comment; undecided, the 202 "
    "(with Preference-Applied). `respond-async`: answer at once. Without it, the deployment's "
    "ARX_EXECUTE_APPROVAL_WAIT_SECONDS (0 unless set).",
    schema={"type": "string"},  # type: ignore[arg-type]
)


def components(*, sandbox: bool) -> Components:
    """What the routes refer to by ``$ref``; depends on the deployment's settings."""
    return Components(
        security_schemes=SECURITY_SCHEMES,
        request_bodies={
            "StoreCredential": RequestBody(
                required=True,
                description="The connector's secret (sealed, never returned) and its API URL.",
                content={
                    JSON: OpenAPIMediaType(
                        schema=_store_credential_schema(sandbox)  # type: ignore[arg-type]
                    )
                },
            )
        },
    )


# --- JSON schemas of the bodies ARX decodes itself -------------------------------


def json_schema(type_: Any) -> dict[str, Any]:
    """msgspec's JSON Schema for ``type_`` with every ``$ref`` inlined.

    msgspec decodes the body, so its schema is exactly what the route accepts.
    """
    schema = msgspec.json.schema(type_, schema_hook=secret_schema_hook)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                return inline(defs[ref.rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def refuse_nul(schema: Any) -> Any:
    """``schema`` with every string, and every free-form object key, refusing NUL."""
    if isinstance(schema, list):
        return [refuse_nul(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: refuse_nul(v) for k, v in schema.items() if k not in ("properties", "$defs")}
    if "properties" in schema:
        out["properties"] = {k: refuse_nul(v) for k, v in schema["properties"].items()}
    types = schema.get("type")
    if types == "string" or (isinstance(types, list) and "string" in types):
        if "pattern" in out:
            out = {"allOf": [out, {"pattern": NO_NUL}]}
        else:
            out["pattern"] = NO_NUL
    if types == "object" and schema.get("additionalProperties", True) is not False:
        out["propertyNames"] = {"pattern": NO_NUL}
    return out


@cache
def execute_body_schema() -> dict[str, Any]:
    """One alternative per connector operation, from the operation tables.

    Params are stored with the decision, so their strings may not hold NUL.
    """
    alternatives = []
    for cid, cls in sorted(connectors().items()):
        for op in cls.operations.values():
            params = refuse_nul(json_schema(op.params))
            required = ["connector", "operation"]
            if params.get("required"):
                required.append("params")
            alternatives.append(
                {
                    "title": f"{cid} {op.name}",
                    "description": op.summary,
                    "type": "object",
                    "properties": {
                        "connector": {"const": cid},
                        "operation": {"const": op.name},
                        "params": params,
                    },
                    "required": required,
                    "additionalProperties": False,
                }
            )
    return {
        "description": "The operation to run: a connector id, one of its operations and that "
        "operation's params (GET /v1/sdk/connectors lists them). An unknown connector or "
        "operation is a 404, params that do not fit a 422 naming the field.",
        "oneOf": alternatives,
    }


# A port httpx and urllib accept (0-65535), and a path: printable ASCII
# without "?" or "#" (a base URL carries neither query nor fragment). Written
# for ECMA-262 with the u flag too: no escapes of characters that need none.
_PORT = r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
_PATH = r'(/[!"$-/0-9:;<=>@-~]*)?'


def _any_case(text: str) -> str:
    """``text`` as a regex matching it in any case (JSON Schema has no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in text)


def _host_regex(pattern: str) -> str:
    """A connector's host pattern as a regex, any case, with an optional final dot
    (the server compares hosts in lower case, without it)."""
    wildcard = pattern.startswith("*.")
    name = _any_case(pattern[2:] if wildcard else pattern).replace(".", "[.]")
    label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    return f"{label}[.]{name}" if wildcard else name


def _store_credential_schema(sandbox: bool) -> dict[str, Any]:
    """The body of PUT credentials: each connector's secret, and a base URL on
    one of the connectors' own hosts (arx.vault.destination)."""
    secrets = [json_schema(cls.secret_type) for _, cls in sorted(connectors().items())]
    hosts = sorted({h for cls in connectors().values() for h in cls.allowed_hosts})
    https = _any_case("https")
    hosts_regex = "|".join(map(_host_regex, hosts))
    urls = [{"type": "string", "pattern": rf"^{https}://({hosts_regex})[.]?{_PORT}{_PATH}$"}]
    if sandbox:
        loopback = rf"({_any_case('localhost')}|127[.]0[.]0[.]1|\[::1\])"
        urls.append(
            {"type": "string", "pattern": rf"^{_any_case('http')}[sS]?://{loopback}{_PORT}{_PATH}$"}
        )
    return {
        "type": "object",
        "properties": {
            # Sealed with envelope encryption, never stored as text: any string goes.
            "secret": secrets[0] if len(secrets) == 1 else {"anyOf": secrets},
            "base_url": {
                "anyOf": [*urls, {"type": "null"}, {"const": ""}],
                "default": None,
                "description": "The tool's API URL; null or empty means the connector's "
                "default. https, to one of the connector's own hosts (GET "
                ".../connectors/{connector}/hosts) or one an org admin added; no user, "
                "query or fragment. Sealed with the secret: the secret is never sent "
                "anywhere else. Loopback (http too) only for the orgs the operator runs a "
                "sandbox for (ARX_SANDBOX_ORGS).",
            },
        },
        "required": ["secret"],
        "additionalProperties": False,
    }


# --- responses -----------------------------------------------------------------


def _subclasses(cls: type[ARXError]) -> Iterator[type[ARXError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


# What Litestar itself answers here: a query parameter of the wrong type, no
# such path, no such method, a body over the size limit.
_LITESTAR_STATUSES = (400, 404, 405, 413)


@cache
def _codes_by_status() -> dict[int, tuple[str, ...]]:
    """Every problem ``code`` ARX can answer with, by status: the error tree, then
    Litestar's own errors."""
    found: dict[int, list[str]] = {}
    for cls in _subclasses(ARXError):
        found.setdefault(cls.status_code, []).append(cls.code)
    for status in _LITESTAR_STATUSES:
        found.setdefault(status, []).append(HTTP_CODES[status])
    return {s: tuple(dict.fromkeys(codes)) for s, codes in found.items()}


_WHY = {
    500: "A bug: the body says nothing about internals.",
    502: "The tool failed or refused the call; event_id names the recorded decision, "
    "upstream_status the tool's answer. connector_unreachable: nothing was sent.",
    503: "A dependency of ARX is down or the request ran out of time before anything ran: "
    "nothing was executed. Retry-After when a retry soon is likely to succeed.",
    504: "The tool got the request but did not answer: it may have acted. Check before retrying.",
    429: "The tool is rate limiting ARX: retry after Retry-After seconds.",
}


def _problem_spec(status: int) -> ResponseSpec:
    codes = ", ".join(f"`{c}`" for c in _codes_by_status().get(status, ("internal_error",)))
    why = _WHY.get(status)
    text = f"{HTTPStatus(status).phrase}. code: {codes}." + (f" {why}" if why else "")
    return ResponseSpec(
        data_container=Problem,
        media_type=MEDIA_TYPE,
        description=text,
        generate_examples=False,
    )


def _response_header(name: str, *, required: bool = False) -> OpenAPIHeader:
    header = _HEADERS[name]
    return OpenAPIHeader(description=header.description, schema=header.schema, required=required)


@dataclass(frozen=True)
class RouteDoc:
    """The documentation of one route; ``responses`` and ``operation_class`` go to
    its decorator."""

    security: str | None
    errors: tuple[int, ...]
    # Success statuses whose body Litestar cannot infer (raw Response[bytes]).
    success: Mapping[int, tuple[type[msgspec.Struct], str]] = field(default_factory=dict)
    body: dict[str, Any] | Reference | None = None
    # The body's media type (a bundle upload is application/gzip).
    body_media: str = JSON
    idempotent: bool = False
    # Statuses whose answer always (True) or sometimes (False) carries Retry-After.
    retry_after: Mapping[int, bool] = field(default_factory=dict)
    # Path parameters that take one of a fixed set of values (anything else is a 404).
    path_enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The roles (in the route's org) the control-plane guard accepts; listed in
    # the security requirement, as OpenAPI 3.1 allows for non-OAuth schemes.
    roles: tuple[str, ...] = ()
    # The route also accepts the bootstrap token.
    bootstrap: bool = False
    # An escalation may be held for reviewers (Prefer: wait=N).
    holds: bool = False
    # A 200 streamed in one of these media types (name -> what one line or
    # row is), chosen by the request; Litestar cannot infer a Stream's body.
    streams: Mapping[str, str] = field(default_factory=dict)

    @property
    def opt(self) -> dict[str, Any]:
        """The handler's ``opt``: what ``arx.api.guards.control_guard`` enforces."""
        return {"arx_roles": tuple(str(r) for r in self.roles), "arx_bootstrap": self.bootstrap}

    @property
    def responses(self) -> dict[int, ResponseSpec]:
        specs = {
            status: ResponseSpec(data_container=struct, description=text, generate_examples=False)
            for status, (struct, text) in self.success.items()
        }
        specs.update({status: _problem_spec(status) for status in self.errors})
        return specs

    @property
    def operation_class(self) -> type[Operation]:
        doc = self

        class Documented(Operation):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                doc._apply(self)

        return Documented

    def _apply(self, op: Operation) -> None:
        if self.body is not None:
            op.request_body = (
                self.body
                if isinstance(self.body, Reference)
                else RequestBody(
                    required=True,
                    content={self.body_media: OpenAPIMediaType(schema=self.body)},  # type: ignore[arg-type]
                )
            )
        roles = [str(r) for r in self.roles]
        op.security = [{self.security: roles}] if self.security else []
        if self.bootstrap and self.security != BOOTSTRAP_TOKEN:
            op.security.append({BOOTSTRAP_TOKEN: []})
        if roles:
            note = f"Roles accepted in the org: {', '.join(roles)}."
            op.description = f"{op.description}\n\n{note}" if op.description else note
        for param in op.parameters or []:
            if isinstance(param, Parameter) and param.name in self.path_enums:
                param.schema = {"type": "string", "enum": list(self.path_enums[param.name])}  # type: ignore[assignment]
        if self.idempotent:
            op.parameters = [*(op.parameters or []), IDEMPOTENCY_KEY]
        if self.holds:
            op.parameters = [*(op.parameters or []), PREFER]
        declared = {str(s) for s in (*self.errors, *self.success)}
        responses = op.responses or {}
        if self.streams:
            responses["200"] = OpenAPIResponse(
                description="Streamed (chunked): a response cut short ends without the "
                "final chunk, so a client can tell it from a complete one.",
                content={
                    media: OpenAPIMediaType(schema={"type": "string", "description": text})  # type: ignore[arg-type]
                    for media, text in self.streams.items()
                },
            )
        for status in list(responses):
            # Litestar adds its own 400 for validation errors; ARX's are problems,
            # declared where they can happen.
            if status not in declared and not status.startswith("2"):
                del responses[status]
        for status, response in responses.items():
            if isinstance(response, OpenAPIResponse):
                response.headers = dict(self._headers(int(status)))

    def _headers(self, status: int) -> Iterator[tuple[str, OpenAPIHeader | Reference]]:
        yield "X-Request-ID", _response_header("X-Request-ID", required=True)
        yield "X-Client-Request-ID", _response_header("X-Client-Request-ID")
        if status in self.retry_after:
            yield "Retry-After", _response_header("Retry-After", required=self.retry_after[status])
        if status == 202:
            yield "Location", _response_header("Location", required=True)
            if self.holds:
                yield "Preference-Applied", _response_header("Preference-Applied")
        if status == 401:
            yield "WWW-Authenticate", _response_header("WWW-Authenticate", required=True)
        if self.idempotent:
            yield "Idempotent-Replayed", _response_header("Idempotent-Replayed")
