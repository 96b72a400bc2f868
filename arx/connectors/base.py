"""BaseConnector: the one path every operation takes (the INV-002 intercept).

Subclasses declare ``id``, ``auth_scheme``, ``secret_type`` (the msgspec
Struct their decrypted credential decodes into), ``default_base_url`` and
the ``operations`` table, and implement ``_execute_impl``. They never touch
policy, audit or the vault: ``execute()`` (in this module) does, in the
order DESIGN.md section 3 fixes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import msgspec

from arx.connectors.types import CallContext, Operation
from arx.errors import UnknownOperationError


class BaseConnector(ABC):
    id: ClassVar[str]
    auth_scheme: ClassVar[str]
    secret_type: ClassVar[type[msgspec.Struct]]
    default_base_url: ClassVar[str]
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
        ``ConnectorAuthError`` / ``ConnectorRequestError``.
        """
