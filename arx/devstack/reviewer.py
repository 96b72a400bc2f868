"""The demo's reviewer when nobody is at the keyboard (``arx demo --no-wait``).

It does what a person does in a browser: waits for the escalation to reach
the org's queue, signs in on ARX's own sign-in page with the local account,
and approves on the review page's form (with the session's CSRF token).
Approving needs a person: an admin token never votes (arx.approvals.review).
"""

from __future__ import annotations

import re
import time

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(page: httpx.Response) -> str:
    match = _CSRF.search(page.text)
    if match is None:
        raise RuntimeError(f"no form on {page.request.url.path} ({page.status_code})")
    return match.group(1)


def first_pending(base: str, org_id: str, owner_token: str, *, timeout: float) -> str:
    """The id of the first request in the org's queue, once there is one."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=10) as http:
        while time.monotonic() < deadline:
            queue = http.get(
                f"/v1/admin/orgs/{org_id}/approvals",
                headers={"authorization": f"Bearer {owner_token}"},
            )
            queue.raise_for_status()
            if queue.json():
                return str(queue.json()[0]["approval_id"])
            time.sleep(0.2)
    raise TimeoutError("no approval request reached the queue")


def approve(
    base: str, org_slug: str, approval_id: str, *, email: str, password: str, comment: str
) -> None:
    """Sign in as ``email`` and approve ``approval_id`` on the review page."""
    with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as browser:
        login = browser.get("/auth/login")
        signed_in = browser.post(
            "/auth/login",
            data={"csrf_token": _csrf(login), "email": email, "password": password},
        )
        if signed_in.status_code != 303:
            raise RuntimeError(f"sign-in as {email} failed ({signed_in.status_code})")
        page_url = f"/review/{org_slug}/approvals/{approval_id}"
        page = browser.get(page_url)
        voted = browser.post(
            f"{page_url}/vote",
            data={"csrf_token": _csrf(page), "decision": "approve", "comment": comment},
        )
        if voted.status_code != 303:
            raise RuntimeError(f"the approval was refused ({voted.status_code})")
