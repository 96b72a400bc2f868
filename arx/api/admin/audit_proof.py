"""The audit trail's proof: ``GET /v1/admin/orgs/{id}/audit/verify`` and the
signed checkpoints an auditor keeps.

Recomputes the org's hash chain from the events the database holds and
checks every checkpoint's signature and head (``arx.audit.verify``): OK, or
the first place the trail diverges and how.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar import Request, get
from litestar.params import FromPath, QueryParameter

from arx.api.admin import docs
from arx.api.state import runtime
from arx.audit.checkpoints import CheckpointExport
from arx.audit.verify import VerifyReport, export_checkpoints_of, verify_org
from arx.identity.roles import AUDIT
from arx.runtime import Runtime, witness_path

_VERIFY = docs.read(AUDIT, errors_extra=(400,))

FromCheckpoint = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        description="Trust this validly signed checkpoint and verify from it on.",
    ),
]


@get(
    "/orgs/{org_id:uuid}/audit/verify",
    opt=_VERIFY.opt,
    operation_class=_VERIFY.operation_class,
    responses=_VERIFY.responses,
    summary="Verify the org's audit trail: the hash chain from its events, every checkpoint's "
    "signature and head; OK or the first place it diverges, and how",
)
async def verify_trail(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    from_checkpoint: FromCheckpoint = None,
) -> VerifyReport:
    rt = runtime(request)
    return await verify_org(
        rt.control_pool,
        org_id,
        public_keys=trusted_keys(rt),
        witness=witness_path(rt.settings),
        from_checkpoint=from_checkpoint,
        now=datetime.now(UTC),
    )


_CHECKPOINTS = docs.read(AUDIT)


@get(
    "/orgs/{org_id:uuid}/audit/checkpoints",
    opt=_CHECKPOINTS.opt,
    operation_class=_CHECKPOINTS.operation_class,
    responses=_CHECKPOINTS.responses,
    summary="The org's signed checkpoints and the deployment's public keys (the signing "
    "key's, then retired ones'): what an auditor "
    "keeps and verifies offline (arx audit verify-checkpoints)",
)
async def export_checkpoints(
    request: Request[Any, Any, Any], org_id: FromPath[UUID]
) -> CheckpointExport:
    rt = runtime(request)
    return await export_checkpoints_of(rt.control_pool, org_id, trusted_keys(rt))


def trusted_keys(rt: Runtime) -> list[Ed25519PublicKey]:
    """The signing key's public half first, then the retired keys'."""
    current = [rt.audit_signer.public] if rt.audit_signer is not None else []
    return [*current, *rt.audit_retired_keys]


ROUTES = [verify_trail, export_checkpoints]
