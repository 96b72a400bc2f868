"""``ARXClient`` and ``AsyncARXClient``: the agent's way into ARX.

Both build their requests and read their responses through
``agentvault._core.BaseClient``; this module only sends and sleeps. Neither
retries on its own: an agent decides when a retry is safe (see the error
classes), and passes the same ``idempotency_key`` when it retries ``execute``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from agentvault._core import BaseClient
from agentvault.errors import ApprovalPendingError
from agentvault.types import Approval, ConnectorInfo, ExecuteResult

__all__ = ["ARXClient", "AsyncARXClient"]

# Indirection so tests can drive wait_for_approval without real sleeping.
_sleep = time.sleep
_async_sleep = asyncio.sleep


class ARXClient(BaseClient[httpx.Client]):
    """Synchronous client for ARX's agent API (``/v1/sdk``).

    ``api_key`` defaults to ``$ARX_API_KEY`` and ``base_url`` to
    ``$ARX_BASE_URL``, then ``http://127.0.0.1:8080``. ``timeout`` (seconds)
    applies to every request, including through a caller's ``http_client``,
    which the client uses but never closes. Use as a context manager, or call
    ``close()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            timeout=timeout,
            http_client=http_client,
            new_http_client=lambda: httpx.Client(timeout=timeout),
        )

    def execute(
        self,
        connector: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        wait_for_approval: float | None = None,
    ) -> ExecuteResult:
        """Ask ARX to run ``operation`` on ``connector``; return its result.

        Raises ``ApprovalPendingError`` when a reviewer must decide first,
        ``PermissionDeniedError`` when policy denies, and the other
        ``AgentVaultError`` subclasses as documented in ``agentvault.errors``.

        With ``wait_for_approval`` (seconds), an escalated call waits for the
        reviewers' decision and then resumes itself: it returns the result of
        the approved call (run once), or raises ``PermissionDeniedError``
        (``approval_rejected``/``approval_expired``, with the reviewer's
        comment) or ``ApprovalTimeoutError`` if nobody decided in time.
        """
        request = self._execute_request(connector, operation, params, idempotency_key)
        try:
            return self._execute_result(self._send(request))
        except ApprovalPendingError as pending:
            if wait_for_approval is None or not pending.approval_id:
                raise
            self.wait_for_approval(pending.approval_id, timeout=wait_for_approval)
            # The server says what the decision means: the result, or why not.
            return self.resume(pending.approval_id, connector, operation, params)

    def resume(
        self,
        approval_id: str,
        connector: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
    ) -> ExecuteResult:
        """Run the call reviewers approved: exactly the same connector, operation
        and params as the call that escalated. It runs once; calling again
        returns the first answer. Raises ``ConflictError`` while reviewers have
        not decided, ``PermissionDeniedError`` if they rejected it (or policy
        now denies it)."""
        return self._execute_result(
            self._send(self._resume_request(approval_id, connector, operation, params))
        )

    def get_approval(self, approval_id: str) -> Approval:
        """The current state of an approval request."""
        return self._approval_result(self._send(self._approval_request(approval_id)))

    def wait_for_approval(
        self, approval_id: str, *, timeout: float, poll_interval: float = 2.0
    ) -> Approval:
        """Wait until the approval is no longer pending; return it.

        Each poll is held by ARX until a reviewer decides (long poll), so the
        answer comes as soon as there is one; ``poll_interval`` only spaces
        polls to a server that answers at once. The result may be
        ``approved``, ``rejected`` or ``expired``: check ``status`` (and
        ``comment``). Raises ``ApprovalTimeoutError`` after ``timeout``
        seconds. Errors while polling propagate; calling again resumes the wait.
        """
        wait = self._approval_wait(approval_id, timeout, poll_interval)
        while True:
            hold, request_timeout = wait.begin()
            request = self._approval_request(approval_id, request_timeout, hold)
            approval = self._approval_result(self._send(request))
            delay = wait.next_delay(approval)
            if delay is None:
                return approval
            if delay:
                _sleep(delay)

    def connectors(self) -> list[ConnectorInfo]:
        """The connectors and operations this deployment offers."""
        return self._connectors_result(self._send(self._connectors_request()))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._http.send(request)
        except httpx.RequestError as exc:
            raise self._transport_error(request, exc) from exc


class AsyncARXClient(BaseClient[httpx.AsyncClient]):
    """Asynchronous (asyncio) twin of ``ARXClient``; same arguments and errors.

    Use with ``async with``, or call ``aclose()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            timeout=timeout,
            http_client=http_client,
            new_http_client=lambda: httpx.AsyncClient(timeout=timeout),
        )

    async def execute(
        self,
        connector: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        wait_for_approval: float | None = None,
    ) -> ExecuteResult:
        """See ``ARXClient.execute``."""
        request = self._execute_request(connector, operation, params, idempotency_key)
        try:
            return self._execute_result(await self._send(request))
        except ApprovalPendingError as pending:
            if wait_for_approval is None or not pending.approval_id:
                raise
            await self.wait_for_approval(pending.approval_id, timeout=wait_for_approval)
            return await self.resume(pending.approval_id, connector, operation, params)

    async def resume(
        self,
        approval_id: str,
        connector: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
    ) -> ExecuteResult:
        """See ``ARXClient.resume``."""
        return self._execute_result(
            await self._send(self._resume_request(approval_id, connector, operation, params))
        )

    async def get_approval(self, approval_id: str) -> Approval:
        """See ``ARXClient.get_approval``."""
        return self._approval_result(await self._send(self._approval_request(approval_id)))

    async def wait_for_approval(
        self,
        approval_id: str,
        *,
        # The same signature as ARXClient's; the deadline spans many polls and
        # sleeps, which a caller's asyncio.timeout around the call cannot report
        # as ApprovalTimeoutError with the last state seen.
        timeout: float,  # noqa: ASYNC109
        poll_interval: float = 2.0,
    ) -> Approval:
        """See ``ARXClient.wait_for_approval``."""
        wait = self._approval_wait(approval_id, timeout, poll_interval)
        while True:
            hold, request_timeout = wait.begin()
            request = self._approval_request(approval_id, request_timeout, hold)
            approval = self._approval_result(await self._send(request))
            delay = wait.next_delay(approval)
            if delay is None:
                return approval
            if delay:
                await _async_sleep(delay)

    async def connectors(self) -> list[ConnectorInfo]:
        """See ``ARXClient.connectors``."""
        return self._connectors_result(await self._send(self._connectors_request()))

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._http.send(request)
        except httpx.RequestError as exc:
            raise self._transport_error(request, exc) from exc
