"""``Secret``: a plaintext credential or token that cannot be shown by accident.

Every way Python or a library might turn a value into text or bytes is
closed: ``repr``, ``str``, ``format`` and rich's display print ``***``;
pickling, copying into another process and msgspec encoding refuse (msgspec
knows no ``Secret`` unless given ``reveal_hook``, which only the vault's
sealing uses). The value is read with ``reveal()`` at the one place it is
sent, so a search for ``reveal(`` finds every use.

Structs holding secrets declare the field as ``Secret`` and are decoded with
``secret_dec_hook``; their JSON schema comes from ``secret_schema_hook``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any, NoReturn

REDACTED = "***"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The plaintext, for the one request that sends it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __rich_repr__(self) -> Iterator[str]:
        yield REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    # Equal secrets must not be told apart by a hash either: none.
    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self  # immutable: a copy is the same value

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def secret_dec_hook(type_: type, obj: Any) -> Any:
    """msgspec ``dec_hook``: a JSON string where a ``Secret`` is declared."""
    if type_ is Secret:
        # msgspec names the field in its error; the value is never echoed.
        if not isinstance(obj, str):
            raise TypeError("expected a string")
        if not obj:
            raise ValueError("must not be empty")
        return Secret(obj)
    raise NotImplementedError(f"no decoder for {type_!r}")


def reveal_hook(obj: Any) -> Any:
    """msgspec ``enc_hook`` for sealing only: the plaintext goes into the vault."""
    if isinstance(obj, Secret):
        return obj.reveal()
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def secret_schema_hook(type_: type) -> dict[str, Any]:
    """msgspec ``schema_hook``: a write-only string in the OpenAPI document."""
    if type_ is Secret:
        return {"type": "string", "writeOnly": True, "minLength": 1}
    raise NotImplementedError(f"no schema for {type_!r}")
