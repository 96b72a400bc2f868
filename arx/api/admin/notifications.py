"""Reviewer notifications: the org's Slack and Teams channels, and their deliveries."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from litestar import Request, delete, get, post, put
from litestar.openapi.spec import Components, OpenAPIMediaType, Reference, RequestBody
from litestar.params import FromPath, FromQuery

from arx.api import body
from arx.api.admin import docs
from arx.api.guards import access
from arx.api.openapi import ADMIN_TOKEN, RouteDoc, json_schema, refuse_nul
from arx.api.state import runtime
from arx.approvals.notify import channels, queue, urls
from arx.approvals.notify.types import (
    ChannelsInfo,
    Delivery,
    DeliveryStatus,
    RetryDelivery,
    SetSlack,
    SetTeams,
    SlackChannelInfo,
    TeamsChannelInfo,
)
from arx.identity.roles import MANAGE, READ

# Names of the request bodies in the document's components.
SLACK_BODY = "NotificationChannelSlack"
TEAMS_BODY = "NotificationChannelTeams"
_SET_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 500, 503)

_CHANNELS = docs.read(READ)
_SET_SLACK = RouteDoc(
    security=ADMIN_TOKEN,
    errors=_SET_ERRORS,
    # Its webhook URL rule depends on the deployment: see components() below.
    body=Reference(ref=f"#/components/requestBodies/{SLACK_BODY}"),
    roles=MANAGE,
)
_SET_TEAMS = RouteDoc(
    security=ADMIN_TOKEN,
    errors=_SET_ERRORS,
    body=Reference(ref=f"#/components/requestBodies/{TEAMS_BODY}"),
    roles=MANAGE,
)
_REMOVE = docs.action(MANAGE)
_LIST = docs.read(READ, errors_extra=(400,))
_RETRY = docs.write(MANAGE, RetryDelivery)

_CHANNELS_PATH = "/orgs/{org_id:uuid}/notification-channels"


@get(
    _CHANNELS_PATH,
    opt=_CHANNELS.opt,
    operation_class=_CHANNELS.operation_class,
    responses=_CHANNELS.responses,
    summary="Where reviewers are notified (Slack, Teams): settings, never secrets",
)
async def get_channels(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> ChannelsInfo:
    rt = runtime(request)
    return await channels.get_channels(rt.control_pool, org_id, public_url=rt.settings.public_url)


@put(
    f"{_CHANNELS_PATH}/slack",
    opt=_SET_SLACK.opt,
    operation_class=_SET_SLACK.operation_class,
    responses=_SET_SLACK.responses,
    summary="Notify reviewers in Slack (the bot or an incoming webhook); replaces the setting. "
    "Only an owner may turn on interactive_approvals",
)
async def set_slack(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> SlackChannelInfo:
    data: SetSlack = await body.read(request, SetSlack)  # type: ignore[arg-type]
    rt = runtime(request)
    return await channels.set_slack(
        rt.control_pool, rt.vault, rt.http, access(request), data, settings=rt.settings
    )


@put(
    f"{_CHANNELS_PATH}/teams",
    opt=_SET_TEAMS.opt,
    operation_class=_SET_TEAMS.operation_class,
    responses=_SET_TEAMS.responses,
    summary="Notify reviewers in a Teams channel (a Workflows webhook); replaces the setting",
)
async def set_teams(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> TeamsChannelInfo:
    data = await body.read(request, SetTeams)
    rt = runtime(request)
    return await channels.set_teams(
        rt.control_pool,
        rt.vault,
        access(request),
        data,
        allow_insecure_urls=rt.settings.allow_insecure_connector_urls,
    )


async def _remove(
    request: Request[Any, Any, Any], org_id: UUID, channel: Literal["slack", "teams"]
) -> ChannelsInfo:
    rt = runtime(request)
    await channels.remove(rt.control_pool, access(request), channel)
    return await channels.get_channels(rt.control_pool, org_id, public_url=rt.settings.public_url)


@delete(
    f"{_CHANNELS_PATH}/slack",
    status_code=200,
    opt=_REMOVE.opt,
    operation_class=_REMOVE.operation_class,
    responses=_REMOVE.responses,
    summary="Stop notifying in Slack (undelivered notifications are skipped); the channels left",
)
async def remove_slack(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> ChannelsInfo:
    return await _remove(request, org_id, "slack")


@delete(
    f"{_CHANNELS_PATH}/teams",
    status_code=200,
    opt=_REMOVE.opt,
    operation_class=_REMOVE.operation_class,
    responses=_REMOVE.responses,
    summary="Stop notifying in Teams (undelivered notifications are skipped); the channels left",
)
async def remove_teams(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> ChannelsInfo:
    return await _remove(request, org_id, "teams")


@get(
    "/orgs/{org_id:uuid}/notifications",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="Reviewer notifications, newest first: each delivery's status, attempts and last error",
)
async def list_notifications(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    status: FromQuery[DeliveryStatus | None] = None,
) -> list[Delivery]:
    return await queue.list_deliveries(runtime(request).control_pool, org_id, status=status)


@post(
    "/orgs/{org_id:uuid}/notifications/{id:uuid}/retry",
    status_code=200,
    opt=_RETRY.opt,
    operation_class=_RETRY.operation_class,
    responses=_RETRY.responses,
    summary="Requeue a failed notification (its attempts start over); the body is optional",
)
async def retry_notification(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], id: FromPath[UUID]
) -> Delivery:
    data = await body.read_optional(request, RetryDelivery, RetryDelivery())
    return await queue.retry(
        runtime(request).control_pool, access(request), id, comment=data.comment
    )


ROUTES = [
    get_channels,
    set_slack,
    set_teams,
    remove_slack,
    remove_teams,
    list_notifications,
    retry_notification,
]


# --- the OpenAPI document ---------------------------------------------------------------


def _request_body(description: str, schema: dict[str, Any]) -> RequestBody:
    return RequestBody(
        required=True,
        description=description,
        content={"application/json": OpenAPIMediaType(schema=schema)},  # type: ignore[arg-type]
    )


def _url(channel: Literal["slack", "teams"], *, allow_insecure: bool) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 8,
        "maxLength": 2048,
        "pattern": urls.webhook_url_pattern(channel, allow_insecure=allow_insecure),
        "description": "The webhook URL (a secret: sealed, never returned): "
        + urls.describe(channel, allow_insecure=allow_insecure)
        + ".",
    }


def components(*, allow_insecure_connector_urls: bool) -> Components:
    """The channels' request bodies, whose webhook URL rule depends on the deployment."""
    slack = refuse_nul(json_schema(SetSlack))
    # msgspec's mapping names its own $defs, which json_schema inlines away.
    slack.pop("discriminator", None)
    for variant in slack["anyOf"]:
        props = variant["properties"]
        if "webhook_url" in props:
            props["webhook_url"] = _url("slack", allow_insecure=allow_insecure_connector_urls)
        if "interactive_approvals" in props:
            # interactive_approvals: true needs a signing secret.
            variant["anyOf"] = [
                {"properties": {"interactive_approvals": {"const": False}}},
                {
                    "required": ["signing_secret"],
                    "properties": {"signing_secret": {"type": "string"}},
                },
            ]
    teams = refuse_nul(json_schema(SetTeams))
    teams["properties"]["webhook_url"] = _url("teams", allow_insecure=allow_insecure_connector_urls)
    return Components(
        request_bodies={
            SLACK_BODY: _request_body(
                "Slack through the app's bot (mode bot: chat.postMessage, optionally with "
                "Approve/Reject buttons, which only an owner may turn on; ARX asks Slack's "
                "auth.test which workspace and app the token belongs to) or an incoming webhook "
                "(mode webhook). Secrets are sealed and never returned.",
                slack,
            ),
            TEAMS_BODY: _request_body("A Teams Workflows webhook.", teams),
        }
    )
