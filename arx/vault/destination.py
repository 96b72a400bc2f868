"""Where a credential may be sent: checked when it is stored and before every use.

A credential's base URL is sealed with it (arx.vault.crypto): a changed
``base_url`` column no longer opens. This module is the other half: the URL
itself must name an allowed host of the connector. The rules:

- https, no user or password, no query and no fragment;
- the host matches one of the connector's own hosts (its vendor's documented
  API hosts) or one an org admin added for that connector (audited);
  ``*.example.com`` matches exactly one label in front of ``example.com``;
- an address literal is never a host, with one exception: loopback (and
  ``localhost``), over http or https, for the orgs the operator lets use a
  local sandbox (``ARX_SANDBOX_ORGS``).

The names are resolved only at connection time, by ``PublicResolver``
(arx.connectors.http), which refuses private, loopback, link-local and
metadata addresses and hands the connection the very address it checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

# A DNS name as IDNA leaves it: letters, digits and hyphens per label.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
LOOPBACK_NAMES = frozenset({"localhost"})


class DestinationError(ValueError):
    """The URL may not receive a credential; the message says why (no secret in it)."""


@dataclass(frozen=True, slots=True)
class Destination:
    scheme: str
    host: str
    port: int | None
    url: str
    loopback: bool


def normalize_host(host: str) -> str:
    """``host`` in the form it is compared in: lower case, IDNA, no final dot."""
    name = host.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise DestinationError(f"{host!r} is not a valid host name") from None
    return name


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def parse(url: str) -> Destination:
    """``url`` split and held to the shape rules (not yet to a host list);
    ``url`` of the result is its normal form (scheme and host in lower case,
    no final dot or slash), which is what is sealed, checked and requested.

    Cached: a credential's URL is checked before every call, and never changes.
    """
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        # Non-ASCII too: IDNA 2003 (Python's codec) and 2008 (httpx's) map some
        # names to different hosts; an internationalised name is written as xn--.
        raise DestinationError(
            "the URL must be printable ASCII (write an internationalised host as xn--…)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DestinationError("the URL is malformed (or its port out of range)") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationError("the URL must be an absolute https URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise DestinationError("the URL may not carry a user or password")
    if parts.query or "?" in url:
        raise DestinationError("the URL may not carry a query")
    if parts.fragment or "#" in url:
        raise DestinationError("the URL may not carry a fragment")
    host = parts.hostname
    address = _address(host)
    if address is None:
        host = normalize_host(host)
        if not all(_LABEL.match(label) for label in host.split(".")):
            raise DestinationError(f"{parts.hostname!r} is not a valid host name")
        loopback = host in LOOPBACK_NAMES
    else:
        host = str(address)
        loopback = address.is_loopback
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    normal = f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")
    return Destination(scheme=parts.scheme, host=host, port=port, url=normal, loopback=loopback)


def host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)]
    return host == pattern


def check_pattern(pattern: str) -> str:
    """An org admin's host pattern, normalized, or ``DestinationError``."""
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in pattern):
        raise DestinationError("a host is printable ASCII (an internationalised name as xn--…)")
    wildcard = pattern.startswith("*.")
    host = normalize_host(pattern[2:] if wildcard else pattern)
    if _address(host) is not None:
        raise DestinationError("an address is not a host: name the tool's host")
    labels = host.split(".")
    if (
        len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or not labels[-1][0].isalpha()
    ):
        raise DestinationError(f"{pattern!r} is not a host name (or *.domain) with a domain")
    if host in LOOPBACK_NAMES:
        raise DestinationError("loopback is the sandbox's, which the operator enables")
    return f"*.{host}" if wildcard else host


def check(
    url: str,
    *,
    connector: str,
    connector_hosts: Iterable[str],
    org_hosts: Iterable[str],
    sandbox: bool,
) -> Destination:
    """``url`` if a credential of ``connector`` may be sent there, else ``DestinationError``."""
    dest = parse(url)
    if dest.loopback:
        if not sandbox:
            raise DestinationError(
                "a loopback URL is only for a local sandbox, which this deployment does "
                "not enable for the org (ARX_SANDBOX_ORGS)"
            )
        return dest
    if dest.scheme != "https":
        raise DestinationError("the URL must use https")
    if _address(dest.host) is not None:
        raise DestinationError("an address is not an allowed host: use the tool's host name")
    allowed = (*connector_hosts, *org_hosts)
    if not any(host_matches(dest.host, pattern) for pattern in allowed):
        raise DestinationError(
            f"{dest.host} is not an allowed host for {connector}; an org admin may add it"
        )
    return dest
