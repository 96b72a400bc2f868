"""What the policy lifecycle answers: stored bundles, activations, status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Revision = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}-[0-9a-f]{12}$")]


class BundleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One pushed bundle: never its content."""

    revision: str
    sha256: str
    size_bytes: int
    tests_passed: int
    description: str | None
    uploaded_by: str
    uploaded_at: datetime
    active: bool = False


class Activation(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of an org's activation history (newest first in lists)."""

    seq: int
    revision: str
    action: Literal["activate", "rollback"]
    activated_by: str
    activated_at: datetime
    # sha256 of the signed bundle the sidecars receive (the bundle service's ETag).
    etag: str


class PolicyStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The org's active revision (none until a first activation) and its history."""

    org_slug: str
    active: Activation | None
    history: list[Activation]


class Pushed(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a push: the stored bundle, and whether it was new."""

    bundle: BundleInfo
    created: bool


class Activate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    revision: Revision


class Rollback(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Roll back to ``to``, or by default to the revision active before the current one."""

    to: Revision | None = None
