"""agentvault: the typed Python client agents use to call ARX.

    from agentvault import ARXClient, ApprovalPendingError

    with ARXClient() as arx:            # ARX_API_KEY, ARX_BASE_URL from the environment
        try:
            result = arx.execute("crowdstrike", "hosts:contain", {"device_id": "abc"})
        except ApprovalPendingError as pending:
            approval = arx.wait_for_approval(pending.approval_id, timeout=600)

See ``agentvault.errors`` for the exception tree.
"""

from agentvault._version import __version__
from agentvault.client import ARXClient, AsyncARXClient
from agentvault.errors import (
    AgentVaultError,
    APIError,
    ApprovalPendingError,
    ApprovalTimeoutError,
    AuthenticationError,
    ConflictError,
    ConnectorError,
    ConnectorUnreachableError,
    DeadlineExceededError,
    IdempotencyOutcomeUnknownError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    SessionContentionError,
    TransportError,
    UnsupportedMediaTypeError,
)
from agentvault.types import Approval, ConnectorInfo, ExecuteResult, OperationInfo

__all__ = [
    "APIError",
    "ARXClient",
    "AgentVaultError",
    "Approval",
    "ApprovalPendingError",
    "ApprovalTimeoutError",
    "AsyncARXClient",
    "AuthenticationError",
    "ConflictError",
    "ConnectorError",
    "ConnectorInfo",
    "ConnectorUnreachableError",
    "DeadlineExceededError",
    "ExecuteResult",
    "IdempotencyOutcomeUnknownError",
    "InvalidRequestError",
    "NotFoundError",
    "OperationInfo",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "SessionContentionError",
    "TransportError",
    "UnsupportedMediaTypeError",
    "__version__",
]
