"""Every exception the SDK raises on purpose.

    AgentVaultError                     status, code, detail, request_id
    ├── TransportError                  no HTTP response (refused, timed out, reset)
    ├── ApprovalPendingError (202)      policy said ESCALATE; a reviewer must decide
    ├── ApprovalTimeoutError            wait_for_approval gave up; still pending
    └── APIError                        ARX answered with an error, or an unreadable body
        ├── AuthenticationError (401)   missing, unknown or revoked API key
        ├── PermissionDeniedError (403) policy said DENY; carries policy_id, reasons
        ├── InvalidRequestError (400, 413, 422)   names the offending ``field``
        │   ├── UnsupportedMediaTypeError (415)   the body was not sent as JSON
        │   ├── NotFoundError (404)     unknown connector, operation or approval
        │   └── ConflictError (409)     e.g. no credential configured for the connector
        │       └── IdempotencyOutcomeUnknownError (409)   a retried key whose first
        │                                   attempt may have run; not run again
        ├── RateLimitedError (429)      the tool is rate limiting ARX; retry_after
        ├── ConnectorError (502)        the security tool failed; carries upstream_status
        │   ├── ConnectorUnreachableError (502)   nothing was sent; safe to retry
        │   └── OutcomeUnknownError (504)   sent, no answer: the tool may have acted
        └── ServiceUnavailableError (503)   nothing was executed; safe to retry
            ├── DeadlineExceededError (503)     ran out of time before executing
            └── SessionContentionError (503)    too many concurrent calls of this agent

Branch on the class or on ``code`` (stable, from the problem+json body), never
on the message text. ``status`` is the HTTP status (``None`` when no response
was involved), ``detail`` the server's human-readable explanation and
``request_id`` the id to quote when reporting a problem to the ARX operators.

No exception's ``str()`` or ``repr()`` contains the API key: the clients
scrub it from anything a server or a transport error hands back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from datetime import datetime

    from agentvault.types import Approval

__all__ = [
    "APIError",
    "AgentVaultError",
    "ApprovalPendingError",
    "ApprovalTimeoutError",
    "AuthenticationError",
    "ConflictError",
    "ConnectorError",
    "ConnectorUnreachableError",
    "DeadlineExceededError",
    "IdempotencyOutcomeUnknownError",
    "InvalidRequestError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "SessionContentionError",
    "TransportError",
    "UnsupportedMediaTypeError",
]


class AgentVaultError(Exception):
    """Base of every error the SDK raises on purpose.

    Every constructor argument has a default so that exceptions survive
    ``pickle`` (which rebuilds them from ``args`` alone).
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.request_id = request_id

    def _message(self) -> str:
        """The body of ``str()``; subclasses append what they carry."""
        return self.detail or type(self).__name__

    def __str__(self) -> str:
        head = " ".join(p for p in (_opt(self.status), self.code) if p)
        text = f"[{head}] {self._message()}" if head else self._message()
        if self.request_id:
            text += f" (request_id={self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"detail={self.detail!r}, request_id={self.request_id!r})"
        )


class TransportError(AgentVaultError):
    """No HTTP response arrived: connection refused, DNS failure, timeout, reset.

    The request may or may not have reached ARX. Retrying an ``execute`` is
    only safe with the same ``idempotency_key``.
    """


class ApprovalPendingError(AgentVaultError):
    """The policy said ESCALATE: the operation waits for a human reviewer.

    Nothing has executed yet. ``status`` is the HTTP status (202);
    ``approval_status`` is the approval's own state (``"pending"``). Poll
    with ``client.wait_for_approval(err.approval_id, timeout=...)``.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = 202,
        request_id: str | None = None,
        event_id: str | None = None,
        approval_id: str | None = None,
        approval_status: str | None = None,
        verdict: str | None = None,
        risk_score: int | None = None,
        policy_id: str | None = None,
        reasons: list[str] | None = None,
        bundle_revision: str | None = None,
        poll_url: str | None = None,
        expires_at: datetime | None = None,
        approvals_required: int = 1,
    ) -> None:
        super().__init__(detail, status=status, code="approval_pending", request_id=request_id)
        self.event_id = event_id
        self.approval_id = approval_id
        self.approval_status = approval_status
        self.verdict = verdict
        self.risk_score = risk_score
        self.policy_id = policy_id
        self.reasons = list(reasons or [])
        self.bundle_revision = bundle_revision
        self.poll_url = poll_url
        self.expires_at = expires_at
        # How many distinct reviewers must approve (policy's two-person rule).
        self.approvals_required = approvals_required

    def _message(self) -> str:
        text = self.detail or f"approval {self.approval_id} is pending"
        text += _decision(self.policy_id, self.risk_score, self.reasons)
        if self.poll_url:
            text += f"; poll {self.poll_url} or call wait_for_approval({self.approval_id!r})"
        return text


class ApprovalTimeoutError(AgentVaultError):
    """``wait_for_approval`` ran out of time while the approval was still pending.

    ``approval`` is the last state seen. The request is still open: waiting
    again with the same ``approval_id`` is fine.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        approval_id: str | None = None,
        timeout: float | None = None,
        approval: Approval | None = None,
    ) -> None:
        super().__init__(detail, code="approval_timeout")
        self.approval_id = approval_id
        self.timeout = timeout
        self.approval = approval


class APIError(AgentVaultError):
    """ARX answered with an error status, or with a body the SDK cannot read.

    Raised as is for statuses the contract does not name (500, a proxy's
    HTML page …). ``problem`` holds the full problem+json body (extension
    members included) when there was one; ``body`` the raw text, truncated.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        problem: dict[str, Any] | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(detail, status=status, code=code, request_id=request_id)
        self.title = title
        self.problem: dict[str, Any] = dict(problem or {})
        self.body = body


class AuthenticationError(APIError):
    """The API key is missing, unknown or revoked (401, ``invalid_api_key``)."""


class PermissionDeniedError(APIError):
    """The policy said DENY (403, ``policy_denied``). Nothing was executed.

    ``policy_id`` and ``reasons`` say why; ``event_id`` is the audit record.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = 403,
        code: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        problem: dict[str, Any] | None = None,
        body: str | None = None,
        event_id: str | None = None,
        verdict: str | None = None,
        risk_score: int | None = None,
        policy_id: str | None = None,
        reasons: list[str] | None = None,
    ) -> None:
        super().__init__(
            detail,
            status=status,
            code=code,
            request_id=request_id,
            title=title,
            problem=problem,
            body=body,
        )
        self.event_id = event_id
        self.verdict = verdict
        self.risk_score = risk_score
        self.policy_id = policy_id
        self.reasons = list(reasons or [])

    def _message(self) -> str:
        return super()._message() + _decision(self.policy_id, self.risk_score, self.reasons)


class InvalidRequestError(APIError):
    """ARX rejected the request itself (400, 404, 409, 413, 415, 422).

    ``code`` says how (``malformed_json``, ``invalid_field``,
    ``unknown_connector``, ``unknown_operation``, ``credential_not_configured``,
    ``payload_too_large`` …); ``field`` names the offending field when known.
    Retrying the same request will fail the same way.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        problem: dict[str, Any] | None = None,
        body: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(
            detail,
            status=status,
            code=code,
            request_id=request_id,
            title=title,
            problem=problem,
            body=body,
        )
        self.field = field

    def _message(self) -> str:
        text = super()._message()
        return f"{text} (field: {self.field})" if self.field else text


class UnsupportedMediaTypeError(InvalidRequestError):
    """415 ``unsupported_media_type``: the body did not arrive as JSON.

    The SDK always sends ``application/json``; something between the agent
    and ARX (a proxy) changed the request.
    """


class NotFoundError(InvalidRequestError):
    """404: unknown connector, operation or approval."""


class ConflictError(InvalidRequestError):
    """409: the request conflicts with ARX's state (``credential_not_configured`` …)."""


class IdempotencyOutcomeUnknownError(ConflictError):
    """409 ``idempotency_outcome_unknown``: this ``idempotency_key`` was used before,
    and that first attempt stopped after its decision was recorded.

    The tool may have acted, so ARX does not run the request again, with this
    key or by itself. ``event_id`` is the first attempt's decision in the
    audit trail and ``outcome`` its recorded result, if any. Check the tool
    before sending the request again with a new key.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = 409,
        code: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        problem: dict[str, Any] | None = None,
        body: str | None = None,
        field: str | None = None,
        event_id: str | None = None,
        outcome: str | None = None,
    ) -> None:
        super().__init__(
            detail,
            status=status,
            code=code,
            request_id=request_id,
            title=title,
            problem=problem,
            body=body,
            field=field,
        )
        self.event_id = event_id
        self.outcome = outcome


class RateLimitedError(APIError):
    """429 ``connector_rate_limited``: the security tool is rate limiting ARX.

    The tool refused the call, so nothing ran: send it again (with the same
    ``idempotency_key`` if you used one) after ``retry_after`` seconds, the
    server's ``Retry-After``. ``event_id`` is the recorded decision and
    ``upstream_status`` the tool's status.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        problem: dict[str, Any] | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        event_id: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(
            detail,
            status=status,
            code=code,
            request_id=request_id,
            title=title,
            problem=problem,
            body=body,
        )
        self.retry_after = retry_after
        self.event_id = event_id
        self.upstream_status = upstream_status

    def _message(self) -> str:
        text = super()._message()
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g}s)"
        return text


class ConnectorError(APIError):
    """The security tool failed or rejected ARX's call (502).

    ``code`` is ``connector_error``, ``connector_auth_failed``,
    ``connector_request_failed`` or ``tool_response_too_large``;
    ``upstream_status`` is the tool's HTTP status when it answered. The
    decision was audited under ``event_id``; whether the tool acted is
    unknown, so retry only idempotently. Two subclasses say more:
    ``ConnectorUnreachableError`` (nothing was sent) and
    ``OutcomeUnknownError`` (sent, no answer).
    """

    # A subclass that only answers with another status says so here.
    default_status: ClassVar[int] = 502

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        problem: dict[str, Any] | None = None,
        body: str | None = None,
        event_id: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(
            detail,
            status=self.default_status if status is None else status,
            code=code,
            request_id=request_id,
            title=title,
            problem=problem,
            body=body,
        )
        self.event_id = event_id
        self.upstream_status = upstream_status

    def _message(self) -> str:
        text = super()._message()
        if self.upstream_status is not None:
            text += f" (upstream status {self.upstream_status})"
        return text


class ConnectorUnreachableError(ConnectorError):
    """502 ``connector_unreachable``: ARX could not connect to the tool, so nothing
    was sent. Retrying is safe (with a new ``idempotency_key``: the first one
    replays this answer)."""


class OutcomeUnknownError(ConnectorError):
    """504 ``outcome_unknown``: the request reached (or may have reached) the tool,
    and no answer came back in time.

    The tool may have acted. Look at the tool (or the audit trail under
    ``event_id``) before retrying; a blind retry can act twice. Any 504 maps
    here: a gateway timing out in front of ARX leaves the outcome as unknown.
    """

    default_status: ClassVar[int] = 504


class ServiceUnavailableError(APIError):
    """ARX's policy engine or database is down, or the request ran out of time
    before anything ran (503). Nothing was executed.

    Safe to retry; ``retry_after`` is the server's hint in seconds, if any.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = 503,
        code: str | None = None,
        request_id: str | None = None,
        title: str | None = None,
        problem: dict[str, Any] | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            detail,
            status=status,
            code=code,
            request_id=request_id,
            title=title,
            problem=problem,
            body=body,
        )
        self.retry_after = retry_after


class DeadlineExceededError(ServiceUnavailableError):
    """503 ``deadline_exceeded``: the request's time ran out before the operation
    was executed (nothing ran). Safe to retry."""


class SessionContentionError(ServiceUnavailableError):
    """503 ``session_contention``: too many concurrent calls of this agent kept
    changing its session while this one was decided; nothing ran. Retry after
    ``retry_after`` seconds, or send fewer calls at once."""


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)


def _decision(policy_id: str | None, risk_score: int | None, reasons: list[str]) -> str:
    """`` (policy p, risk 80): r1; r2`` — what an agent needs to explain a verdict."""
    facts = [
        f"policy {policy_id}" if policy_id else "",
        f"risk {risk_score}" if risk_score is not None else "",
    ]
    text = ", ".join(f for f in facts if f)
    text = f" ({text})" if text else ""
    return f"{text}: {'; '.join(reasons)}" if reasons else text
