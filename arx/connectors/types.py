"""Types every connector declares: its operation table and call context.

The operation table is the single source of truth for an operation's
parameters, kind and base risk: the policy input, the OpenAPI description
and the SDK's discovery call are all derived from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec


class OperationKind(StrEnum):
    READ = "read"
    WRITE = "write"
    CONTAINMENT = "containment"
    DESTRUCTIVE = "destructive"


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request to a tool, built from an operation's validated params."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    json: Any = None
    # A form body (application/x-www-form-urlencoded) instead of JSON.
    form: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """One row of a connector's operation table."""

    name: str
    params: type[msgspec.Struct]
    kind: OperationKind
    base_risk: int
    reversible: bool
    target_type: str
    summary: str
    inverse: str | None = None
    # The param naming the ids the call acts on (a string or a list of them):
    # recorded with the decision, counted by the policy's session windows.
    target_param: str | None = None
    # The request for validated params (arx.connectors.rest; required there).
    build: Callable[[Any], ApiCall] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.base_risk <= 100:
            raise ValueError(f"{self.name}: base_risk must be within 0..100")

    def targets(self, params: dict[str, Any]) -> list[str] | None:
        """The ids this call names, from validated params; None if it names none."""
        if self.target_param is None:
            return None
        value = params.get(self.target_param)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
        return None


@dataclass(frozen=True, slots=True)
class CallContext:
    """Non-secret facts about the stored credential a call runs with.

    ``credential_key`` changes whenever the credential is rotated, so anything
    a connector caches per credential (an OAuth access token) is keyed by it
    and dies with the old version.
    """

    base_url: str
    credential_key: str
    # The largest answer the connector may read from the tool.
    max_response_bytes: int


@dataclass(frozen=True, slots=True)
class ExecuteCall:
    """A validated request to run one operation."""

    connector: str
    operation: Operation
    params: msgspec.Struct
    raw_params: dict[str, Any]
