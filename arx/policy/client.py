"""Client of the OPA sidecar: asks for ``data.arx.decision`` with provenance.

Fail closed: OPA unreachable, slow, erroring, an undefined result or a
decision that does not match the schema all raise
``PolicyEngineUnavailableError``; nothing is ever treated as a permit, and
nothing is retried (a retry would only stretch the agent's wait).

One aiohttp session (keep-alive) per process posts the body that
``arx.policy.input`` encoded, and msgspec decodes the answer into a typed
``Decision``: no JSON round trip through Python builtins on either side
(docs/decisions/0008).
"""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec

from arx.errors import PolicyEngineUnavailableError
from arx.policy.types import Decision

_JSON = {"content-type": "application/json"}


class _BundleProvenance(msgspec.Struct, frozen=True):
    revision: str = ""


class _Provenance(msgspec.Struct, frozen=True):
    bundles: dict[str, _BundleProvenance] = msgspec.field(default_factory=dict)
    revision: str | None = None  # legacy single-bundle form


class _Answer(msgspec.Struct, frozen=True):
    result: Decision | None = None
    provenance: _Provenance | None = None


_decode_answer = msgspec.json.Decoder(_Answer).decode


def bundle_name(name: str) -> str:
    """``/x/y/example.tar.gz`` (a bundle loaded from a file) → ``example``."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return base.removesuffix(".tar.gz")


def revision_label(revisions: dict[str, str]) -> str | None:
    """The response's ``bundle_revision``: every contributing bundle, sorted."""
    if not revisions:
        return None
    return ";".join(sorted(revisions.values()))


class PolicyClient:
    def __init__(self, opa_url: str, *, timeout_seconds: float, token: str = "") -> None:
        if not opa_url.startswith(("http://", "https://")):
            raise ValueError(f"ARX_OPA_URL must be an http(s) URL, got {opa_url!r}")
        self._base = opa_url.rstrip("/")
        # The sidecar answers only the holder of its token (opa/authz.rego).
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._headers = {**_JSON, **auth}
        self._auth = auth
        self._decision_url = f"{self._base}/v1/data/arx/decision?provenance=true"
        self._timeout = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def decide(self, body: bytes, *, within: float) -> Decision:
        """Ask for ``data.arx.decision`` with ``body`` (``{"input": …}``)."""
        budget = min(self._timeout, within)
        if budget <= 0:
            raise PolicyEngineUnavailableError("no time was left to ask the policy engine")
        try:
            async with asyncio.timeout(budget):
                async with self._client().post(
                    self._decision_url, data=body, headers=self._headers
                ) as resp:
                    status, payload = resp.status, await resp.read()
        except TimeoutError:
            raise PolicyEngineUnavailableError(
                f"the policy engine did not answer within {budget:.3g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise PolicyEngineUnavailableError(
                f"the policy engine is unreachable ({type(exc).__name__})"
            ) from None
        if status in (401, 403):
            raise PolicyEngineUnavailableError(
                f"the policy engine refused ARX's token (HTTP {status}): check ARX_OPA_TOKEN"
            )
        if status != 200:
            raise PolicyEngineUnavailableError(f"the policy engine answered HTTP {status}")
        try:
            answer = _decode_answer(payload)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
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
        """The decision entrypoint answers: the base library is loaded.

        Not ``/health?bundles``: with bundles from ARX's bundle service, one
        org's bundle that failed to verify or compile would make every org's
        sidecar look down, though it keeps deciding (that org with its last
        good revision).
        """
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client().post(
                    f"{self._base}/v1/data/arx/decision",
                    data=b'{"input":{}}',
                    headers=self._headers,
                ) as resp:
                    if resp.status != 200:
                        return False
                    doc = await resp.read()
        except (TimeoutError, aiohttp.ClientError):
            return False
        try:
            answer = msgspec.json.decode(doc)
        except msgspec.DecodeError:
            return False
        return isinstance(answer, dict) and "result" in answer
