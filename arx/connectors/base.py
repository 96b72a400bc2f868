"""BaseConnector: the vendor contract, and nothing else.

A connector declares ``id``, ``auth_scheme``, ``secret_type`` (the msgspec
Struct its decrypted credential decodes into), ``default_base_url`` and the
``operations`` table, and implements ``_execute_impl``: the HTTP calls to the
tool with the secret it is handed. It never touches policy, audit or the
vault; the intercept (``arx.intercept``) drives it, in the order DESIGN.md
section 3 fixes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import msgspec

from arx.connectors.types import CallContext, ExecuteCall, Operation
from arx.errors import InvalidFieldError, ToolResponseTooLargeError, UnknownOperationError


class BaseConnector(ABC):
    id: ClassVar[str]
    auth_scheme: ClassVar[str]
    secret_type: ClassVar[type[msgspec.Struct]]
    default_base_url: ClassVar[str]
    # Where its credentials may be sent (arx.vault.destination): the vendor's
    # documented API hosts, exact or "*.domain"; org admins may add more.
    allowed_hosts: ClassVar[tuple[str, ...]]
    operations: ClassVar[Mapping[str, Operation]]

    def __init__(self, http: httpx.AsyncClient) -> None:
        # One shared client with explicit timeouts, injected so tests can
        # point it at an in-process fake through httpx.ASGITransport.
        self._http = http

    @classmethod
    def operation(cls, name: str) -> Operation:
        try:
            return cls.operations[name]
        except KeyError:
            raise UnknownOperationError(
                f"connector {cls.id!r} has no operation {name!r}",
                extra={"connector": cls.id, "operation": name},
            ) from None

    @classmethod
    def validate(cls, operation_name: str, params: dict[str, Any]) -> ExecuteCall:
        """Check an operation's params against its table entry (no I/O)."""
        operation = cls.operation(operation_name)
        try:
            typed = msgspec.convert(params, operation.params)
        except msgspec.ValidationError as exc:
            raise InvalidFieldError.from_validation(
                exc, prefix="params", what=f"invalid params for {cls.id} {operation_name}: "
            ) from None
        return ExecuteCall(connector=cls.id, operation=operation, params=typed, raw_params=params)

    @abstractmethod
    async def _execute_impl(
        self,
        operation: Operation,
        params: msgspec.Struct,
        secret: Any,
        context: CallContext,
    ) -> dict[str, Any]:
        """Call the tool's API and return a JSON-serialisable result.

        ``secret`` is an instance of ``secret_type``; it must not be logged,
        returned, or placed in an exception message. Failures raise
        ``ConnectorError`` subclasses: ``transport_failure`` (arx.connectors.http)
        tells whether the tool may have acted.
        """

    def _check_size(self, response: httpx.Response, context: CallContext) -> None:
        """Refuse an answer longer than the connector may read.

        The runtime's transport stops reading at the limit; this covers any
        other transport (the tests' in-process fakes).
        """
        if len(response.content) > context.max_response_bytes:
            raise ToolResponseTooLargeError(
                f"{self.id} answered with {len(response.content)} bytes, more than the "
                f"{context.max_response_bytes} ARX reads",
                upstream_status=response.status_code,
            )
