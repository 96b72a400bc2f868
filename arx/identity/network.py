"""The client's address, and whether an org's allowlist admits it.

The address is the TCP peer's, unless that peer is one of the configured
trusted proxies: then ``X-Forwarded-For`` is read from the right, skipping
trusted proxies, and the first address that is not one is the client. A
header from anyone else is ignored (a client could write anything in it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings to networks; raises ValueError naming the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> Address | None:
    current = _address(peer) if peer else None
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    while current is not None and hops and any(current in net for net in trusted):
        current = _address(hops.pop())
    return current


def admitted(address: Address | None, allowlist: Sequence[Network] | None) -> bool:
    """No allowlist admits everyone; with one, an unknown address is refused."""
    if allowlist is None:
        return True
    return address is not None and any(address in net for net in allowlist)
