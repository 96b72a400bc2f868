"""HTTP client of the OPA sidecar.

Fail closed: OPA unreachable, slow, erroring, an undefined result or a
decision that does not match the schema all raise
``PolicyEngineUnavailableError``; nothing is ever treated as a permit.

One shared ``httpx.AsyncClient`` (keep-alive to loopback) is used for every
decision; it measured faster than opa-python-client's aiohttp client (see
bench/policy_client.py and docs/decisions/0002-opa-client.md).
"""

from __future__ import annotations

import httpx
import msgspec

from arx.errors import PolicyEngineUnavailableError
from arx.policy.types import Decision, PolicyInput

DECISION_PATH = "/v1/data/arx/decision"


class _BundleProvenance(msgspec.Struct, frozen=True):
    revision: str = ""


class _Provenance(msgspec.Struct, frozen=True):
    bundles: dict[str, _BundleProvenance] = msgspec.field(default_factory=dict)
    revision: str | None = None  # legacy single-bundle form


class _Answer(msgspec.Struct, frozen=True):
    result: Decision | None = None
    provenance: _Provenance | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Answer)


def bundle_name(name: str) -> str:
    """``/x/y/example.tar.gz`` (a bundle loaded from a file) → ``example``."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return base.removesuffix(".tar.gz")


class PolicyClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + DECISION_PATH
        self._params = {"provenance": "true"}

    async def decide(self, policy_input: PolicyInput) -> Decision:
        body = b'{"input":' + _encoder.encode(policy_input) + b"}"
        try:
            resp = await self._http.post(
                self._url,
                content=body,
                params=self._params,
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise PolicyEngineUnavailableError(
                f"the policy engine is unreachable ({type(exc).__name__})"
            ) from None
        if resp.status_code != 200:
            raise PolicyEngineUnavailableError(
                f"the policy engine answered HTTP {resp.status_code}"
            )
        try:
            answer = _decoder.decode(resp.content)
        except msgspec.DecodeError as exc:
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

    async def bundles_ready(self) -> bool:
        try:
            resp = await self._http.get(
                self._url.removesuffix(DECISION_PATH) + "/health", params={"bundles": "true"}
            )
        except httpx.HTTPError:
            return False
        return resp.status_code == 200


def revision_label(revisions: dict[str, str]) -> str | None:
    """The response's ``bundle_revision``: every contributing bundle, sorted."""
    if not revisions:
        return None
    return ";".join(sorted(revisions.values()))
