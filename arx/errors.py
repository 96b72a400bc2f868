"""The one exception tree of ARX.

Every error the service raises on purpose is an ``ARXError``. Each class
carries a stable machine-readable ``code`` and the HTTP ``status_code`` it
maps to; ``arx.api.problems`` turns any of them into an RFC 9457
``application/problem+json`` body. Routes never build error bodies by hand,
and nothing branches on an exception's message text.

    ARXError (500)
    ├── BadRequestError (400)
    │   ├── MalformedJSONError (400)
    │   ├── InvalidFieldError (422)           names the offending field
    │   │   └── IdempotencyKeyReusedError (422)
    │   ├── PayloadTooLargeError (413)
    │   └── UnsupportedMediaTypeError (415)
    ├── NotFoundError (404)
    │   ├── UnknownConnectorError (404)
    │   ├── UnknownOperationError (404)
    │   └── CredentialNotFoundError (409)     the org has not configured it
    ├── AuthenticationError (401)             no valid agent key
    │   ├── AdminAuthenticationError (401)    no valid admin credential (token, JWT, session)
    │   ├── SignInFailedError (401)           a person's sign-in did not succeed
    │   └── RequestSignatureError (401)       a signed callback (Slack) with a bad signature
    ├── PermissionDeniedError (403)           policy said DENY
    ├── AccessDeniedError (403)               authenticated, but not allowed here
    │   ├── RoleRequiredError (403)           the caller lacks a role the route accepts
    │   ├── AgentDisabledError (403)          the agent (or its whole org) is switched off
    │   ├── AddressNotAllowedError (403)      the client address is outside the org's allowlist
    │   ├── CSRFError (403)                   a form without its anti-forgery token
    │   ├── ApprovalRejectedError (403)       reviewers rejected the request (their comment)
    │   ├── ApprovalExpiredError (403)        nobody decided the request in time
    │   └── BootstrapClosedError (403)        the bootstrap token after an owner exists
    ├── TooManyAttemptsError (429)            failed sign-ins are rate-limited; Retry-After
    ├── ConflictError (409)
    │   ├── IdempotencyKeyInFlightError (409)
    │   ├── IdempotencyOutcomeUnknownError (409)  an abandoned first attempt may have run
    │   ├── ApprovalPendingError (409)        reviewers have not decided yet
    │   ├── ApprovalMismatchError (409)       a resume whose call is not the one approved
    │   ├── ApprovalInProgressError (409)     another resume of it is running
    │   └── DestinationRefusedError (409)     a credential's URL is not an allowed host
    ├── ServiceUnavailableError (503)         nothing was executed
    │   ├── PolicyEngineUnavailableError (503)
    │   ├── DatabaseUnavailableError (503)
    │   ├── DeadlineExceededError (503)       the deadline passed before execution
    │   ├── SessionContentionError (503)      the agent's session kept changing
    │   ├── IdentityProviderUnavailableError (503)  the IdP's metadata or keys are unreachable
    │   ├── KeyUnavailableError (503)         the org's KMS key refused or cannot be reached
    │   └── ControlPlaneDisabledError (503)   this process serves agents only
    ├── ConnectorError (502)                  the target tool failed
    │   ├── ConnectorAuthError (502)
    │   ├── ConnectorRequestError (502)
    │   ├── ConnectorUnreachableError (502)   nothing reached the tool
    │   ├── ToolResponseTooLargeError (502)   the tool acted; its answer was dropped
    │   ├── ConnectorRateLimitedError (429)   the tool said "slow down"; Retry-After
    │   └── OutcomeUnknownError (504)         sent, but no answer: it may have run
    └── VaultError (500)                      a credential cannot be decrypted

Messages must never contain a credential, an API key or a decrypted value:
they are logged and returned to agents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ARXError(Exception):
    """Base of every error ARX raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # Extra members of the problem body (RFC 9457 extension members).
        self.extra: dict[str, Any] = dict(extra or {})
        # Response headers the answer must carry (Retry-After).
        self.headers: dict[str, str] = dict(headers or {})


class BadRequestError(ARXError):
    status_code = 400
    code = "bad_request"
    title = "Bad request"


class MalformedJSONError(BadRequestError):
    code = "malformed_json"
    title = "Request body is not valid JSON"


class InvalidFieldError(BadRequestError):
    status_code = 422
    code = "invalid_field"
    title = "A field is missing or has the wrong type"

    def __init__(self, detail: str, *, field: str | None) -> None:
        super().__init__(detail, extra={"field": field})
        self.field = field

    @classmethod
    def from_validation(
        cls, exc: Exception, *, prefix: str = "", what: str = ""
    ) -> InvalidFieldError:
        """Build from a ``msgspec.ValidationError``, naming the field it points at.

        msgspec messages name the path (``- at `$.params.ids[0]```) and never
        echo the offending value, so they are safe to return.
        """
        message = str(exc)
        path = _field_path(message)
        field = ".".join(p for p in (prefix, path) if p) or None
        return cls(f"{what}{message}", field=field)


def _field_path(message: str) -> str | None:
    marker = "- at `$"
    start = message.rfind(marker)
    if start >= 0:
        return message[start + len(marker) :].rstrip("`").lstrip(".") or None
    for lead in ("Object missing required field `", "Object contains unknown field `"):
        if message.startswith(lead):
            return message[len(lead) :].split("`", 1)[0]
    return None


class InvalidQueryError(BadRequestError):
    code = "invalid_query"
    title = "A query parameter is not valid"

    def __init__(self, detail: str, *, parameter: str) -> None:
        super().__init__(detail, extra={"parameter": parameter})


class PayloadTooLargeError(BadRequestError):
    status_code = 413
    code = "payload_too_large"
    title = "Request body is too large"


class UnsupportedMediaTypeError(BadRequestError):
    status_code = 415
    code = "unsupported_media_type"
    title = "The request body must be application/json"


class BundleRejectedError(BadRequestError):
    """A policy bundle failed a check before it was stored: its archive, its
    roots, its compilation, its tests or its org document. ``detail`` quotes
    OPA's own output when OPA refused it."""

    status_code = 422
    code = "bundle_rejected"
    title = "The policy bundle was rejected"


class NotFoundError(ARXError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class UnknownConnectorError(NotFoundError):
    code = "unknown_connector"
    title = "Unknown connector"


class UnknownOperationError(NotFoundError):
    code = "unknown_operation"
    title = "Unknown operation"


class CredentialNotFoundError(NotFoundError):
    status_code = 409
    code = "credential_not_configured"
    title = "The organization has no credential for this connector"


class AuthenticationError(ARXError):
    status_code = 401
    code = "invalid_api_key"
    title = "Missing or invalid API key"


class AdminAuthenticationError(AuthenticationError):
    code = "invalid_admin_token"
    title = "Missing or invalid admin token"


class SignInFailedError(AuthenticationError):
    code = "sign_in_failed"
    title = "Sign-in failed"


class RequestSignatureError(AuthenticationError):
    """A callback that must be signed (Slack's interactions) is not, or not by
    whom it claims, or too long ago to rule out a replay."""

    code = "invalid_signature"
    title = "The request's signature is missing, stale or wrong"


class PermissionDeniedError(ARXError):
    """The policy engine returned DENY; the body carries policy id and reasons."""

    status_code = 403
    code = "policy_denied"
    title = "Denied by policy"


class AccessDeniedError(ARXError):
    """The caller is known but may not do this; nothing was changed."""

    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class RoleRequiredError(AccessDeniedError):
    code = "role_required"
    title = "Your role in this org does not allow this"


class SelfApprovalError(AccessDeniedError):
    code = "own_agent"
    title = "You cannot approve what an agent you own asked for"


class AgentDisabledError(AccessDeniedError):
    code = "agent_disabled"
    title = "This agent is disabled"


class AddressNotAllowedError(AccessDeniedError):
    code = "address_not_allowed"
    title = "Requests from this address are not allowed for this org"


class CSRFError(AccessDeniedError):
    code = "csrf_failed"
    title = "The form's anti-forgery token is missing or wrong"


class BootstrapClosedError(AccessDeniedError):
    code = "bootstrap_closed"
    title = "The bootstrap token only creates the first org and owner"


class TooManyAttemptsError(ARXError):
    status_code = 429
    code = "too_many_attempts"
    title = "Too many failed attempts; wait before trying again"


class ConflictError(ARXError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyKeyInFlightError(ConflictError):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still running"


class IdempotencyKeyReusedError(InvalidFieldError):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"


class ApprovalMismatchError(ConflictError):
    """A well-formed call that conflicts with the approval it names."""

    code = "approval_mismatch"
    title = "This call is not the one the approval was given for"


class ApprovalRejectedError(AccessDeniedError):
    code = "approval_rejected"
    title = "Reviewers rejected this request"


class ApprovalExpiredError(AccessDeniedError):
    code = "approval_expired"
    title = "Nobody decided this request in time"


class ApprovalPendingError(ConflictError):
    code = "approval_pending"
    title = "Reviewers have not decided this request yet"


class ApprovalInProgressError(ConflictError):
    code = "approval_in_progress"
    title = "This approved request is being run by another call"


class DestinationRefusedError(ConflictError):
    """Checked before anything is sent: the tool was not called."""

    code = "destination_refused"
    title = "The credential may not be sent to its URL"


class IdempotencyOutcomeUnknownError(ConflictError):
    """The key's first request stopped after its decision; the tool may have acted."""

    code = "idempotency_outcome_unknown"
    title = "The first request with this Idempotency-Key may have run; it is not run again"


class ServiceUnavailableError(ARXError):
    """An infrastructure dependency is down. Guarantee: nothing was executed."""

    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"


class PolicyEngineUnavailableError(ServiceUnavailableError):
    code = "policy_engine_unavailable"
    title = "Policy engine unavailable"


class PolicyToolUnavailableError(ServiceUnavailableError):
    """ARX could not run its own ``opa`` to check, build or sign a bundle."""

    code = "policy_tool_unavailable"
    title = "The policy toolchain is not available"


class PolicyToolBusyError(ServiceUnavailableError):
    """Too many bundles are being checked or replayed here; retry later."""

    code = "policy_tool_busy"
    title = "ARX is busy checking other policy bundles"


class DatabaseUnavailableError(ServiceUnavailableError):
    code = "database_unavailable"
    title = "Database unavailable"


class DeadlineExceededError(ServiceUnavailableError):
    code = "deadline_exceeded"
    title = "The request ran out of time before anything was executed"


class SessionContentionError(ServiceUnavailableError):
    code = "session_contention"
    title = "Too many concurrent calls of this agent; nothing was executed"


class KeyUnavailableError(ServiceUnavailableError):
    """The key-encryption key (an org's KMS key) cannot be used: nothing ran."""

    code = "key_unavailable"
    title = "The key that protects the credential cannot be used"


class IdentityProviderUnavailableError(ServiceUnavailableError):
    code = "identity_provider_unavailable"
    title = "The identity provider could not be reached"


class ControlPlaneDisabledError(ServiceUnavailableError):
    code = "control_plane_disabled"
    title = "This ARX process does not serve administration"


class ConnectorError(ARXError):
    """The target tool failed or answered unexpectedly."""

    status_code = 502
    code = "connector_error"
    title = "The security tool returned an error"

    def __init__(
        self,
        detail: str,
        *,
        upstream_status: int | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        merged = {"upstream_status": upstream_status, **(extra or {})}
        super().__init__(detail, extra=merged, headers=headers)
        self.upstream_status = upstream_status


class ConnectorAuthError(ConnectorError):
    code = "connector_auth_failed"
    title = "The security tool rejected ARX's stored credential"


class ConnectorRequestError(ConnectorError):
    code = "connector_request_failed"
    title = "The security tool rejected or failed the request"


class ConnectorUnreachableError(ConnectorError):
    """The connection to the tool failed before the request was sent: nothing ran."""

    code = "connector_unreachable"
    title = "The security tool could not be reached; nothing was sent"


class ToolResponseTooLargeError(ConnectorError):
    code = "tool_response_too_large"
    title = "The security tool answered with more data than ARX accepts"


class ConnectorRateLimitedError(ConnectorError):
    """The tool answered 429; the agent should retry after ``Retry-After`` seconds."""

    status_code = 429
    code = "connector_rate_limited"
    title = "The security tool is rate limiting ARX"


class OutcomeUnknownError(ConnectorError):
    """The request reached (or may have reached) the tool but no answer came back.

    The tool may have acted: an agent must look before it retries.
    """

    status_code = 504
    code = "outcome_unknown"
    title = "The security tool did not answer; the operation may have run"


class VaultError(ARXError):
    code = "vault_error"
    title = "A stored credential could not be decrypted"
