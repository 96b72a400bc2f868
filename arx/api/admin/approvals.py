"""Escalations that people resolve: the org's queue, one request, and votes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery

from arx.api import body
from arx.api.admin import docs
from arx.api.guards import access
from arx.api.state import runtime
from arx.approvals import review
from arx.approvals.types import ApprovalDetail, ApprovalSummary, Vote
from arx.identity.roles import READ, REVIEW

_LIST = docs.read(READ, errors_extra=(400,))
_ONE = docs.read(READ)
_VOTE = docs.write(REVIEW, Vote)


@get(
    "/orgs/{org_id:uuid}/approvals",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="The org's approval requests: pending ones oldest first, or the latest of all",
)
async def list_approvals(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], pending: FromQuery[bool] = True
) -> list[ApprovalSummary]:
    return await review.list_approvals(runtime(request).control_pool, org_id, pending_only=pending)


@get(
    "/orgs/{org_id:uuid}/approvals/{approval_id:uuid}",
    opt=_ONE.opt,
    operation_class=_ONE.operation_class,
    responses=_ONE.responses,
    summary="One approval request in full: the agent and its intent, the call, the decision, "
    "the votes",
)
async def get_approval(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], approval_id: FromPath[UUID]
) -> ApprovalDetail:
    return await review.get_approval(runtime(request).control_pool, org_id, approval_id)


async def _vote(request: Request[Any, Any, Any], approval_id: UUID, *, approve: bool) -> Any:
    data = await body.read_optional(request, Vote, Vote())
    return await review.vote(
        runtime(request).control_pool,
        access(request),
        approval_id,
        approve=approve,
        comment=data.comment,
    )


@post(
    "/orgs/{org_id:uuid}/approvals/{approval_id:uuid}/approve",
    status_code=200,
    opt=_VOTE.opt,
    operation_class=_VOTE.operation_class,
    responses=_VOTE.responses,
    summary="Approve, as a signed-in reviewer (counts towards approvals_required)",
)
async def approve(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], approval_id: FromPath[UUID]
) -> ApprovalDetail:
    result: ApprovalDetail = await _vote(request, approval_id, approve=True)
    return result


@post(
    "/orgs/{org_id:uuid}/approvals/{approval_id:uuid}/reject",
    status_code=200,
    opt=_VOTE.opt,
    operation_class=_VOTE.operation_class,
    responses=_VOTE.responses,
    summary="Reject, as a signed-in reviewer (one rejection rejects)",
)
async def reject(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], approval_id: FromPath[UUID]
) -> ApprovalDetail:
    result: ApprovalDetail = await _vote(request, approval_id, approve=False)
    return result


ROUTES = [list_approvals, get_approval, approve, reject]
