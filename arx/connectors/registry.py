"""The explicit connector registry.

Connectors are registered by id at import time; a duplicate id is a
programming error and fails the import rather than silently shadowing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from arx.errors import UnknownConnectorError

if TYPE_CHECKING:
    from arx.connectors.base import BaseConnector

_C = TypeVar("_C", bound="type[BaseConnector]")

_REGISTRY: dict[str, type[BaseConnector]] = {}


def register(cls: _C) -> _C:
    if cls.id in _REGISTRY:
        raise RuntimeError(f"connector id {cls.id!r} is already registered")
    if getattr(cls, "builds_requests", False):
        missing = sorted(name for name, op in cls.operations.items() if op.build is None)
        if missing:
            raise RuntimeError(
                f"connector {cls.id!r}: operations without a request builder: {', '.join(missing)}"
            )
    _REGISTRY[cls.id] = cls
    return cls


def connector_class(connector_id: str) -> type[BaseConnector]:
    try:
        return _REGISTRY[connector_id]
    except KeyError:
        raise UnknownConnectorError(
            f"unknown connector {connector_id!r}", extra={"connector": connector_id}
        ) from None


def all_connectors() -> dict[str, type[BaseConnector]]:
    return dict(_REGISTRY)
