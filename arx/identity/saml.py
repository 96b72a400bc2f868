"""SAML 2.0 sign-in for people: ARX as a service provider, with pysaml2 and xmlsec1.

Guarantee: ``SamlServiceProvider.consume`` returns a ``SamlAssertion`` only
for a Response that answers the AuthnRequest ARX sent (``InResponseTo``)
and carries exactly one unencrypted Assertion that is

- signed itself (a signed Response around an unsigned Assertion is not
  enough), by a key from the IdP's metadata, with SHA-256 or stronger;
- issued by the one IdP of that metadata;
- for ARX: every AudienceRestriction names ``sp_entity_id``, a bearer
  SubjectConfirmation names ``acs_url`` as Recipient and the Response's
  Destination, when present, is ``acs_url``;
- inside its validity window (NotBefore / NotOnOrAfter, +- the clock skew).

Anything else raises ``SignInFailedError`` whose detail names the failed
check and never echoes the response. Unsolicited (IdP-initiated) responses
are refused: ``request_id`` is required, so a person always starts at ARX,
which is what ties the response to the browser that asked for it.

How the checks are split: pysaml2 verifies the signatures (through xmlsec1,
with keys from the metadata only) and its own profile rules. ARX checks the
claims above itself, because pysaml2 is lax in places: it skips the
Recipient check unless given conversation info, passes an assertion with no
AudienceRestriction, accepts any one of several AudienceRestrictions, and
returns a response without an assertion when the Destination is wrong. The
claims are checked once before pysaml2 runs (so that a refusal names the
claim that failed) and again on the objects pysaml2 verified (so that what
ARX returns is what was verified).

Replay protection is the caller's: it keeps ``assertion_id`` until
``not_on_or_after`` (see ``ReplayGuard``).

pysaml2 is synchronous and runs one xmlsec1 subprocess per signature:
callers run ``consume`` and ``login_redirect`` in a worker thread
(``anyio.to_thread.run_sync``), never on the event loop. One instance may
serve concurrent threads: each call builds its own pysaml2 response
objects, and pysaml2's per-person cache is replaced by one that keeps
nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec
from saml2 import (  # type: ignore[import-untyped]
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    samlp,
)
from saml2 import md as saml_md
from saml2 import saml as saml_core
from saml2 import xmldsig as ds
from saml2.client import Saml2Client  # type: ignore[import-untyped]
from saml2.config import SPConfig  # type: ignore[import-untyped]
from saml2.extension import algsupport  # type: ignore[import-untyped]
from saml2.response import (  # type: ignore[import-untyped]
    StatusError,
    UnsolicitedResponse,
)
from saml2.sigver import SigverError, get_xmlsec_binary  # type: ignore[import-untyped]
from saml2.validate import ResponseLifetimeExceed, ToEarly  # type: ignore[import-untyped]

from arx.errors import ARXError, InvalidFieldError, SignInFailedError

# pysaml2 logs whole documents (a bearer assertion, or a rejected one with
# the person's data) and NameIDs from INFO up, and puts the document into
# its exception messages. ARX logs carry only what ARX passes explicitly.
logging.getLogger("saml2").setLevel(logging.CRITICAL + 1)

# A SAMLResponse is a few KiB; the cap keeps a hostile post from costing
# more than a bounded parse. (Counted on the base64 form field.)
MAX_RESPONSE_CHARS = 256 * 1024
# SAML bindings 3.4.3 / 3.5.3: RelayState MUST NOT exceed 80 bytes.
MAX_RELAY_STATE_BYTES = 80

# SHA-1 and MD5 are refused: collisions in both are practical (chosen-prefix
# for SHA-1 since 2020), and current IdPs sign with SHA-256 by default. The
# SP metadata advertises exactly these.
ACCEPTED_SIGNATURE_METHODS = frozenset(
    {
        ds.SIG_RSA_SHA256,
        ds.SIG_RSA_SHA384,
        ds.SIG_RSA_SHA512,
        ds.SIG_ECDSA_SHA256,
        ds.SIG_ECDSA_SHA384,
        ds.SIG_ECDSA_SHA512,
    }
)
ACCEPTED_DIGEST_METHODS = frozenset({ds.DIGEST_SHA256, ds.DIGEST_SHA384, ds.DIGEST_SHA512})

_STATUS_FAILED = "the identity provider reported that the sign-in did not succeed"
_NOT_THE_IDP = "the SAML response was not issued by the configured identity provider"

_BEARER = saml_core.SCM_BEARER
_EMAIL_FORMAT = saml_core.NAMEID_FORMAT_EMAILADDRESS
_UNSPECIFIED_FORMAT = saml_core.NAMEID_FORMAT_UNSPECIFIED


class SamlConfig(msgspec.Struct, frozen=True, kw_only=True):
    sp_entity_id: str  # ARX's entity id, e.g. https://arx.example/auth/saml/metadata
    acs_url: str  # ARX's assertion consumer service (HTTP-POST binding)
    idp_metadata_xml: str  # the IdP's metadata: its signing certificate and SSO URL
    accepted_clock_skew_seconds: int = 60
    # The attribute (its SAML Name, as sent) that holds the email. Fallback:
    # the NameID, when its format is emailAddress, or unspecified and the
    # value has an email's shape.
    email_attribute: str = "email"
    xmlsec_binary: str | None = None  # None: xmlsec1 found on PATH


class SamlAssertion(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str  # the IdP's entity id
    name_id: str
    email: str | None
    attributes: dict[str, list[str]]  # by SAML attribute Name, string values only
    assertion_id: str  # for replay protection by the caller
    # Epoch seconds after which this assertion is refused anyway (its
    # earliest NotOnOrAfter plus the skew): keep assertion_id until then.
    not_on_or_after: float
    in_response_to: str | None


class ReplayGuard(Protocol):
    """Remembers assertion ids so that each assertion signs a person in once.

    ``first_use`` answers True the first time it sees ``assertion_id`` and
    False ever after, atomically across ARX instances, and keeps the id at
    least until ``not_on_or_after`` (epoch seconds). The caller refuses the
    sign-in on False.
    """

    async def first_use(self, assertion_id: str, not_on_or_after: float) -> bool: ...


class _Claims(msgspec.Struct, frozen=True, kw_only=True):
    """What ARX checks in a Response, independent of who parsed it."""

    sp_entity_id: str
    acs_url: str
    idp_entity_id: str
    request_id: str
    skew: float


class SamlServiceProvider:
    """SP-initiated Web Browser SSO: HTTP-Redirect out, HTTP-POST back."""

    def __init__(self, config: SamlConfig, *, state_dir: str) -> None:
        # pysaml2 needs no files of its own here: the IdP metadata is loaded
        # inline, and the files it hands xmlsec1 are NamedTemporaryFiles in
        # the process's temp directory (TMPDIR), deleted after each call.
        # state_dir is checked so a misconfigured deployment fails at start.
        if not Path(state_dir).is_dir():
            raise ARXError(f"SAML state directory {state_dir!r} does not exist")
        if config.accepted_clock_skew_seconds < 0:
            raise InvalidFieldError(
                "the clock skew must not be negative", field="accepted_clock_skew_seconds"
            )
        self._config = config
        self._xmlsec = _xmlsec_binary(config.xmlsec_binary)
        self._client = _client(config, self._xmlsec)
        self._idp_entity_id = _only_idp(self._client)
        self._metadata_xml = _sp_metadata(config)

    @property
    def idp_entity_id(self) -> str:
        return self._idp_entity_id

    def metadata_xml(self) -> str:
        """ARX's SP metadata, for the IdP's administrator."""
        return self._metadata_xml

    def login_redirect(self, relay_state: str) -> tuple[str, str]:
        """The IdP SSO URL carrying a fresh AuthnRequest, and that request's id.

        The caller keeps the id with the browser's session and passes it to
        ``consume``. ``relay_state`` comes back unchanged with the response;
        keep it an opaque token (at most 80 bytes), never a URL to trust.
        """
        if len(relay_state.encode()) > MAX_RELAY_STATE_BYTES:
            raise ValueError("RelayState must not exceed 80 bytes (SAML bindings 3.4.3)")
        return _prepare_redirect(self._client, self._idp_entity_id, relay_state)

    def consume(self, saml_response: str, *, request_id: str | None) -> SamlAssertion:
        """Verify a posted ``SAMLResponse`` (base64) and return what it asserts."""
        if request_id is None:
            raise SignInFailedError(
                "unsolicited SAML responses are not accepted; start the sign-in at ARX"
            )
        claims = _Claims(
            sp_entity_id=self._config.sp_entity_id,
            acs_url=self._config.acs_url,
            idp_entity_id=self._idp_entity_id,
            request_id=request_id,
            skew=float(self._config.accepted_clock_skew_seconds),
        )
        xml = _decode(saml_response)
        _check(_parse(xml), claims)
        response, assertion = _verify(self._client, xml, request_id)
        not_on_or_after = _check(response, claims)
        return _assertion(
            response, assertion, not_on_or_after, email_attribute=self._config.email_attribute
        )


# --- pysaml2 behind typed functions -------------------------------------------


class _ForgetfulCache:
    """Stands in for pysaml2's per-person identity cache, which ARX never reads."""

    def set(self, *_args: object) -> None:
        return None


def _xmlsec_binary(configured: str | None) -> str:
    if configured is not None:
        if not Path(configured).is_file():
            raise ARXError(f"xmlsec1 not found at {configured!r}")
        return configured
    try:
        return str(get_xmlsec_binary())
    except SigverError:
        raise ARXError("xmlsec1 not found on PATH (Debian package xmlsec1)") from None


def _client(config: SamlConfig, xmlsec: str) -> Any:
    sp_config = SPConfig()
    try:
        sp_config.load(
            {
                "entityid": config.sp_entity_id,
                "service": {
                    "sp": {
                        "endpoints": {
                            "assertion_consumer_service": [(config.acs_url, BINDING_HTTP_POST)],
                        },
                        "allow_unsolicited": False,
                        "want_assertions_signed": True,
                        # Signing the Response as well is allowed, not required:
                        # many IdPs sign only the assertion.
                        "want_response_signed": False,
                        "authn_requests_signed": False,
                    },
                },
                "metadata": {"inline": [config.idp_metadata_xml]},
                "accepted_time_diff": config.accepted_clock_skew_seconds,
                "xmlsec_binary": xmlsec,
                # Never trust a certificate that the message carries itself.
                "only_use_keys_in_metadata": True,
                "allow_unknown_attributes": True,
                "delete_tmpfiles": True,
            }
        )
    except Exception:  # pysaml2 raises anything from a bad document
        raise InvalidFieldError(
            "the identity provider metadata could not be read", field="idp_metadata_xml"
        ) from None
    return Saml2Client(config=sp_config, identity_cache=_ForgetfulCache())


def _only_idp(client: Any) -> str:
    metadata = client.metadata
    idps = list(metadata.identity_providers())
    if len(idps) != 1:
        raise InvalidFieldError(
            f"the metadata must describe exactly one identity provider, not {len(idps)}",
            field="idp_metadata_xml",
        )
    idp = str(idps[0])
    if not metadata.certs(idp, "idpsso", "signing"):
        raise InvalidFieldError(
            "the identity provider metadata has no signing certificate",
            field="idp_metadata_xml",
        )
    if not metadata.single_sign_on_service(idp, BINDING_HTTP_REDIRECT):
        raise InvalidFieldError(
            "the identity provider metadata has no HTTP-Redirect SSO endpoint",
            field="idp_metadata_xml",
        )
    return idp


def _sp_metadata(config: SamlConfig) -> str:
    """Built by hand: pysaml2's generator advertises every algorithm xmlsec1
    knows (MD5 and SHA-1 included), and some IdPs choose from that list."""
    extensions = saml_md.Extensions()
    for digest in sorted(ACCEPTED_DIGEST_METHODS):
        extensions.add_extension_element(algsupport.DigestMethod(algorithm=digest))
    for method in sorted(ACCEPTED_SIGNATURE_METHODS):
        extensions.add_extension_element(algsupport.SigningMethod(algorithm=method))
    descriptor = saml_md.EntityDescriptor(
        entity_id=config.sp_entity_id,
        extensions=extensions,
        spsso_descriptor=saml_md.SPSSODescriptor(
            protocol_support_enumeration=samlp.NAMESPACE,
            authn_requests_signed="false",
            want_assertions_signed="true",
            assertion_consumer_service=[
                saml_md.AssertionConsumerService(
                    binding=BINDING_HTTP_POST,
                    location=config.acs_url,
                    index="0",
                    is_default="true",
                )
            ],
        ),
    )
    return str(descriptor.to_string().decode())


def _prepare_redirect(client: Any, idp: str, relay_state: str) -> tuple[str, str]:
    request_id, info = client.prepare_for_authenticate(
        entityid=idp,
        relay_state=relay_state,
        binding=BINDING_HTTP_REDIRECT,
        response_binding=BINDING_HTTP_POST,
    )
    location = next(value for name, value in info["headers"] if name == "Location")
    return str(location), str(request_id)


def _decode(saml_response: str) -> str:
    if len(saml_response) > MAX_RESPONSE_CHARS:
        raise SignInFailedError("the SAML response is too large")
    compact = "".join(saml_response.split())  # IdPs may wrap the base64 lines
    if not compact:
        raise SignInFailedError("the SAML response is missing")
    try:
        return base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SignInFailedError("the SAML response is not base64 of a UTF-8 document") from None


def _parse(xml: str) -> Any:
    # pysaml2 parses with defusedxml: no DTDs, no entity expansion.
    try:
        response = samlp.response_from_string(xml)
    except Exception:  # ParseError, defusedxml's refusals, schema type errors
        response = None
    if response is None:
        raise SignInFailedError("the SAML response is not a SAML 2.0 Response document")
    return response


# pysaml2's exceptions, most specific first, and what each tells the person.
_PYSAML2_REFUSALS: tuple[tuple[type[BaseException], str], ...] = (
    (
        SigverError,
        "the assertion's signature does not verify against the identity provider's certificate",
    ),
    (UnsolicitedResponse, "the SAML response answers a different sign-in request (InResponseTo)"),
    (ResponseLifetimeExceed, "the assertion has expired"),
    (ToEarly, "the assertion is not valid yet"),
    (StatusError, _STATUS_FAILED),
)


def _verify(client: Any, xml: str, request_id: str) -> tuple[Any, Any]:
    """Signatures and pysaml2's profile checks; the verified Response and Assertion."""
    refused: str | None = None
    try:
        # binding=None: the document is already decoded. (pysaml2's
        # HTTP-POST path would first try to inflate it, which an HTTP-POST
        # response never is, and a deflate bomb would make expensive.)
        result = client.parse_authn_request_response(xml, None, outstanding={request_id: "arx"})
    except Exception as exc:  # pysaml2 also raises bare Exception and ValueError
        refused = next(
            (detail for kind, detail in _PYSAML2_REFUSALS if isinstance(exc, kind)),
            "the SAML response failed verification",
        )
    if refused is not None:
        # Raised outside the handler so that pysaml2's exception is not
        # chained: it carries the document, and its traceback the temporary
        # files xmlsec1 read, which would otherwise close only at a later GC.
        raise SignInFailedError(refused)
    # pysaml2 returns a response without an assertion (instead of raising)
    # when, e.g., the Destination is not one of ours.
    assertion = getattr(result, "assertion", None)
    response = getattr(result, "response", None)
    if (
        assertion is None
        or response is None
        or len(response.assertion) != 1
        or response.assertion[0] is not assertion
    ):
        raise SignInFailedError("the SAML response failed verification")
    return response, assertion


# --- ARX's own checks ----------------------------------------------------------


def _check(response: Any, claims: _Claims) -> float:
    """Refuse unless ``response`` meets every claim; return its replay horizon."""
    status_code = response.status.status_code if response.status is not None else None
    if status_code is None or status_code.value != samlp.STATUS_SUCCESS:
        raise SignInFailedError(_STATUS_FAILED)
    if response.destination is not None and response.destination != claims.acs_url:
        raise SignInFailedError("the SAML response is addressed to another service (Destination)")
    if response.issuer is not None and _text(response.issuer) != claims.idp_entity_id:
        raise SignInFailedError(_NOT_THE_IDP)
    if response.in_response_to != claims.request_id:
        raise SignInFailedError(
            "the SAML response answers a different sign-in request (InResponseTo)"
        )
    if response.encrypted_assertion or len(response.assertion) != 1:
        raise SignInFailedError("the SAML response must carry exactly one unencrypted assertion")
    (assertion,) = response.assertion
    if assertion.issuer is None or _text(assertion.issuer) != claims.idp_entity_id:
        raise SignInFailedError(_NOT_THE_IDP)
    _check_signature_form(assertion)
    now = time.time()
    conditions_end = _check_conditions(assertion.conditions, claims, now)
    confirmation_end = _check_confirmation(assertion.subject, claims, now)
    return min(conditions_end, confirmation_end) + claims.skew


def _check_signature_form(assertion: Any) -> None:
    signature = assertion.signature
    if signature is None:
        raise SignInFailedError(
            "the assertion is not signed; the identity provider must sign assertions"
        )
    signed_info = signature.signed_info
    references = signed_info.reference if signed_info is not None else []
    method = signed_info.signature_method if signed_info is not None else None
    if (
        method is None
        or method.algorithm not in ACCEPTED_SIGNATURE_METHODS
        or len(references) != 1
        or references[0].digest_method is None
        or references[0].digest_method.algorithm not in ACCEPTED_DIGEST_METHODS
    ):
        raise SignInFailedError(
            "the assertion is signed with an algorithm ARX does not accept; "
            "use RSA or ECDSA with SHA-256 or stronger"
        )


def _check_conditions(conditions: Any, claims: _Claims, now: float) -> float:
    if conditions is None or not conditions.audience_restriction:
        raise SignInFailedError("the assertion names no audience (AudienceRestriction)")
    # SAML core 2.5.1.4: each AudienceRestriction must be met on its own.
    for restriction in conditions.audience_restriction:
        if claims.sp_entity_id not in {_text(a) for a in restriction.audience}:
            raise SignInFailedError("the assertion is intended for another service (Audience)")
    problem = _window_problem(conditions.not_before, conditions.not_on_or_after, claims.skew, now)
    if problem is not None:
        raise SignInFailedError(problem)
    return _instant(conditions.not_on_or_after) if conditions.not_on_or_after else float("inf")


def _check_confirmation(subject: Any, claims: _Claims, now: float) -> float:
    if subject is None or subject.name_id is None or not _text(subject.name_id):
        raise SignInFailedError("the assertion has no subject NameID")
    bearers = [
        c.subject_confirmation_data
        for c in subject.subject_confirmation
        if c.method == _BEARER and c.subject_confirmation_data is not None
    ]
    _require(bearers, "the assertion has no bearer subject confirmation")
    # Narrowed step by step so that the refusal names the first check no
    # confirmation passes.
    bearers = _require(
        [d for d in bearers if d.recipient == claims.acs_url],
        "the assertion is addressed to another service's ACS URL (Recipient)",
    )
    bearers = _require(
        [d for d in bearers if d.in_response_to == claims.request_id],
        "the SAML response answers a different sign-in request (InResponseTo)",
    )
    # SAML profiles 4.1.4.2: a bearer confirmation MUST carry NotOnOrAfter.
    bearers = _require(
        [d for d in bearers if d.not_on_or_after],
        "the assertion's subject confirmation has no NotOnOrAfter",
    )
    # Any one confirmation inside its window will do.
    problems = [_window_problem(d.not_before, d.not_on_or_after, claims.skew, now) for d in bearers]
    for data, problem in zip(bearers, problems, strict=True):
        if problem is None:
            return _instant(data.not_on_or_after)
    raise SignInFailedError(str(problems[0]))


def _require(items: list[Any], detail: str) -> list[Any]:
    if not items:
        raise SignInFailedError(detail)
    return items


def _window_problem(
    not_before: str | None, not_on_or_after: str | None, skew: float, now: float
) -> str | None:
    if not_on_or_after and now - skew >= _instant(not_on_or_after):
        return "the assertion has expired"
    if not_before and now + skew < _instant(not_before):
        return "the assertion is not valid yet"
    return None


def _instant(value: str) -> float:
    """An xs:dateTime as epoch seconds; SAML times are UTC ("Z")."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise SignInFailedError("the assertion carries a malformed time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _text(element: Any) -> str:
    text = element.text if element is not None else None
    return text.strip() if isinstance(text, str) else ""


# --- what ARX keeps -------------------------------------------------------------


def _assertion(
    response: Any, assertion: Any, not_on_or_after: float, *, email_attribute: str
) -> SamlAssertion:
    name_id = assertion.subject.name_id
    attributes = _attributes(assertion.attribute_statement)
    return SamlAssertion(
        issuer=_text(assertion.issuer),
        name_id=_text(name_id),
        email=_email(attributes.get(email_attribute, []), name_id),
        attributes=attributes,
        assertion_id=str(assertion.id),
        not_on_or_after=not_on_or_after,
        in_response_to=str(response.in_response_to),
    )


def _attributes(statements: Iterable[Any]) -> dict[str, list[str]]:
    # Read from the signed assertion itself, by the Name the IdP sent:
    # pysaml2's own view renames known OIDs and merges unsigned Advice in.
    found: dict[str, list[str]] = {}
    for statement in statements:
        for attribute in statement.attribute:
            values = [v.text.strip() for v in attribute.attribute_value if isinstance(v.text, str)]
            found.setdefault(str(attribute.name), []).extend(values)
    return found


def _email(values: Sequence[str], name_id: Any) -> str | None:
    for value in values:
        if _looks_like_email(value):
            return value
    # A NameID is an email when its format says so, or when the format is
    # unspecified and the value has the shape (persistent and transient
    # identifiers are opaque even when they contain an "@").
    fmt = name_id.format or _UNSPECIFIED_FORMAT
    value = _text(name_id)
    if fmt in (_EMAIL_FORMAT, _UNSPECIFIED_FORMAT) and _looks_like_email(value):
        return value
    return None


def _looks_like_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in value))


__all__ = [
    "ReplayGuard",
    "SamlAssertion",
    "SamlConfig",
    "SamlServiceProvider",
]
