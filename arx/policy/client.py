"""Client of the OPA sidecar: asks for ``data.arx.decision`` with provenance.

Fail closed: OPA unreachable, slow, erroring, an undefined result or a
decision that does not match the schema all raise
``PolicyEngineUnavailableError``; nothing is ever treated as a permit, and
nothing is retried (a retry would only stretch the agent's wait).

The transport is opa-python-client's ``AsyncOpaClient`` (aiohttp, one
keep-alive session per process): measured 2-3x faster than a shared
``httpx.AsyncClient`` on this path (``bench/policy_client.py``,
docs/decisions/0002-opa-client.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from opa_client import AsyncOpaClient

from arx.errors import PolicyEngineUnavailableError
from arx.policy.types import Decision, PolicyInput

_PROVENANCE = {"provenance": True}


class _BundleProvenance(msgspec.Struct, frozen=True):
    revision: str = ""


class _Provenance(msgspec.Struct, frozen=True):
    bundles: dict[str, _BundleProvenance] = msgspec.field(default_factory=dict)
    revision: str | None = None  # legacy single-bundle form


class _Answer(msgspec.Struct, frozen=True):
    result: Decision | None = None
    provenance: _Provenance | None = None


def bundle_name(name: str) -> str:
    """``/x/y/example.tar.gz`` (a bundle loaded from a file) → ``example``."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return base.removesuffix(".tar.gz")


def revision_label(revisions: dict[str, str]) -> str | None:
    """The response's ``bundle_revision``: every contributing bundle, sorted."""
    if not revisions:
        return None
    return ";".join(sorted(revisions.values()))


def open_opa_client(opa_url: str, timeout_seconds: float) -> AsyncOpaClient:
    parts = urlsplit(opa_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"ARX_OPA_URL must be an http(s) URL, got {opa_url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return AsyncOpaClient(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "https",
        retries=0,
        timeout=timeout_seconds,
    )


class PolicyClient:
    def __init__(self, opa: AsyncOpaClient) -> None:
        self._opa = opa

    async def decide(self, policy_input: PolicyInput) -> Decision:
        doc: dict[str, Any] = msgspec.to_builtins(policy_input)
        try:
            raw = await self._opa.query_rule(doc, "arx", "decision", _PROVENANCE)
        except aiohttp.ClientResponseError as exc:
            raise PolicyEngineUnavailableError(
                f"the policy engine answered HTTP {exc.status}"
            ) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PolicyEngineUnavailableError(
                f"the policy engine is unreachable or answered garbage ({type(exc).__name__})"
            ) from None
        try:
            answer = msgspec.convert(raw, _Answer)
        except msgspec.ValidationError as exc:
            raise PolicyEngineUnavailableError(
                f"the policy engine returned a malformed decision: {exc}"
            ) from None
        if answer.result is None:
            raise PolicyEngineUnavailableError(
                "the policy engine has no decision for data.arx.decision (no bundle loaded?)"
            )
        revisions: dict[str, str] = {}
        if answer.provenance is not None:
            revisions = {
                bundle_name(name): b.revision for name, b in answer.provenance.bundles.items()
            }
            if not revisions and answer.provenance.revision:
                revisions = {"bundle": answer.provenance.revision}
        return msgspec.structs.replace(answer.result, bundle_revisions=revisions)

    async def ready(self) -> bool:
        """Every bundle has activated **and** the entrypoint is defined.

        Active bundles alone are not enough: a sidecar without the base
        library would pass ``/health?bundles`` yet answer every execute 503.
        """
        if not await self._opa.check_health({"bundles": True}):
            return False
        try:
            raw = await self._opa.query_rule({}, "arx", "decision")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        return isinstance(raw, dict) and "result" in raw
