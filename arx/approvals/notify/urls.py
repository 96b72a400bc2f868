"""Where notifications may be sent: each vendor's documented webhook hosts.

A webhook URL is set by an org's admins, and ARX posts to it from inside the
deployment, so an arbitrary URL would let them reach whatever ARX can reach
(the database's port, ARX's own admin API, a cloud metadata service), with
``last_error`` telling them how it answered. So a webhook goes to its
vendor's hosts only, over https (port 443), without userinfo or fragment:

- Slack incoming webhooks: ``https://hooks.slack.com/services/…``;
- Teams Workflows webhooks ("Send webhook alerts to a channel"): hosts under
  ``logic.azure.com`` (``prod-NN.<region>.logic.azure.com``) or
  ``api.powerplatform.com`` (``<env>.NN.environment.api.powerplatform.com``,
  where Microsoft is moving them). Office 365 connector URLs
  (``*.webhook.office.com``) are not accepted: Microsoft retired them.

Where ARX_ALLOW_INSECURE_CONNECTOR_URLS is set (the local sandbox, tests), a
loopback address written as an IP literal (``127.0.0.1``, ``[::1]``) is
accepted too, over http or https; a name (``localhost``) is not, since
what it resolves to is not ARX's to check. ``webhook_url_pattern`` says
the same as a regular expression (ECMA and Python alike) for the OpenAPI
document; ``check_webhook_url`` is the rule.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from arx.approvals.notify.types import ChannelKind
from arx.errors import InvalidFieldError

SLACK_WEBHOOK_HOST = "hooks.slack.com"
TEAMS_HOST_SUFFIXES = (".logic.azure.com", ".api.powerplatform.com")
# Printable ASCII but space and "#" (no fragment).
_REST = r"""[!-"$-~]*"""
_PORT_443 = r"(?::443)?"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_VENDOR_HOSTS: dict[ChannelKind, str] = {
    "slack": r"hooks\.slack\.com",
    "teams": rf"(?:{_LABEL}\.)+(?:logic\.azure\.com|api\.powerplatform\.com)",
}
_LOOPBACK = r"(?:127(?:\.[0-9]{1,3}){3}|\[::1\])"
_DESCRIBED: dict[ChannelKind, str] = {
    "slack": f"https://{SLACK_WEBHOOK_HOST}/…",
    "teams": "https on a Teams Workflows host (…" + " or …".join(TEAMS_HOST_SUFFIXES) + ")",
}


def webhook_url_pattern(channel: ChannelKind, *, allow_insecure: bool) -> str:
    """The webhook URLs a deployment accepts for ``channel``, as a regular expression."""
    vendor = rf"https://{_VENDOR_HOSTS[channel]}{_PORT_443}/{_REST}"
    if allow_insecure:
        return rf"^(?:{vendor}|https?://{_LOOPBACK}(?::[0-9]{{1,5}})?(?:[/?]{_REST})?)$"
    return rf"^{vendor}$"


def describe(channel: ChannelKind, *, allow_insecure: bool) -> str:
    return _DESCRIBED[channel] + (", or http(s) to a loopback IP address" if allow_insecure else "")


def is_loopback_literal(host: str | None) -> bool:
    """``host`` is an IP address (not a name) on the loopback interface."""
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def is_vendor_host(channel: ChannelKind, host: str | None) -> bool:
    """``host`` is one the vendor documents for ``channel``'s webhooks."""
    host = host or ""
    if channel == "slack":
        return host == SLACK_WEBHOOK_HOST
    return (
        host.endswith(TEAMS_HOST_SUFFIXES)
        and re.fullmatch(_VENDOR_HOSTS["teams"], host) is not None
    )


def _parts(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return None
    return parts


def check_webhook_url(
    url: str, channel: ChannelKind, *, allow_insecure: bool, field: str = "webhook_url"
) -> str:
    """``url`` if the deployment accepts it for ``channel``; the message never
    quotes it (the URL is the secret)."""
    parts = _parts(url)
    accepted = (
        parts is not None
        and re.fullmatch(webhook_url_pattern(channel, allow_insecure=allow_insecure), url)
        and parts.username is None
        and parts.password is None
        and not parts.fragment
        and (
            (
                parts.scheme == "https"
                and is_vendor_host(channel, parts.hostname)
                and parts.port in (None, 443)
            )
            or (allow_insecure and is_loopback_literal(parts.hostname))
        )
    )
    if not accepted:
        raise InvalidFieldError(
            f"{field} must be a {channel} webhook URL: "
            f"{describe(channel, allow_insecure=allow_insecure)}",
            field=field,
        )
    return url


def vendor_url(channel: ChannelKind, url: str) -> bool:
    """``url`` goes to the vendor (so its error codes may be recorded), not to
    a local receiver."""
    parts = _parts(url)
    return parts is not None and parts.scheme == "https" and is_vendor_host(channel, parts.hostname)


def slack_api_url_allowed(url: str, *, allow_insecure: bool) -> bool:
    """ARX_SLACK_API_URL: https, or with insecure URLs allowed, plain http too."""
    parts = _parts(url)
    if parts is None or not parts.hostname or parts.username or parts.password:
        return False
    return parts.scheme == "https" or (allow_insecure and parts.scheme == "http")
