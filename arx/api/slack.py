"""Slack's interactivity callback: button clicks on reviewer messages.

HTTP only: the body is read raw (its signature covers the exact bytes) and
handed to ``arx.approvals.notify.interactions``, which decides. Slack is
answered at once with a bare acknowledgement; the clicker's private reply
goes to Slack's ``response_url`` after the answer is sent (for
``block_actions`` that is where Slack takes a message from, not the
acknowledgement's body).

Not in the OpenAPI document, like the web pages: Slack is its only client,
and Slack's contract describes it (a form-encoded ``payload``, signed with
the org's signing secret), not ARX's JSON conventions. Its answers: 200 (an
ack), 401 for any signature that does not verify (including an org that
does not exist or has no signing secret), 415 and 400 for a signed body
that is not Slack's form, 413, and 503 where this process has no control
plane.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath

from arx.api.state import runtime
from arx.approvals.notify import interactions


@post("/v1/slack/interactions/{org_id:uuid}", status_code=200, include_in_schema=False)
async def slack_interactions(
    request: Request[Any, Any, Any], org_id: FromPath[UUID]
) -> Response[bytes]:
    rt = runtime(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    deps = interactions.Deps(
        plane=rt.control_plane(), vault=rt.vault, http=rt.http, settings=rt.settings
    )
    reply = await interactions.handle(deps, org_id, headers, await request.body())
    follow_up = (
        BackgroundTask(interactions.send_response, rt.http, reply)
        if reply.response_url is not None and reply.text is not None
        else None
    )
    return Response(
        content=msgspec.json.encode(interactions.ACK),
        status_code=200,
        media_type="application/json",
        background=follow_up,
    )
