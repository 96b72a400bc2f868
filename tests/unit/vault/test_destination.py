"""Where a credential may go: the URL rules, and the resolver that refuses
names resolving to anything but public addresses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from arx.connectors.http import (
    AiohttpTransport,
    DestinationRefused,
    PublicResolver,
    RefusedAddress,
    is_public,
    transport_failure,
)
from arx.errors import DestinationRefusedError
from arx.vault.destination import DestinationError, check, check_pattern, host_matches, parse

FALCON = ("api.crowdstrike.com", "api.eu-1.crowdstrike.com")


def _check(url: str, *, org: tuple[str, ...] = (), sandbox: bool = False) -> str:
    return check(
        url, connector="crowdstrike", connector_hosts=FALCON, org_hosts=org, sandbox=sandbox
    ).url


def test_allowed_urls_come_back_normalised() -> None:
    """The normal form is what is sealed, checked and requested."""
    assert _check("https://api.crowdstrike.com/") == "https://api.crowdstrike.com"
    assert _check("HTTPS://API.EU-1.CrowdStrike.com.:8443/base/") == (
        "https://api.eu-1.crowdstrike.com:8443/base"
    )
    assert parse("https://API.EU-1.CrowdStrike.com.").host == "api.eu-1.crowdstrike.com"
    assert _check("http://[::1]:9000/", sandbox=True) == "http://[::1]:9000"
    assert _check("https://acme.okta.com", org=("*.okta.com",)) == "https://acme.okta.com"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://api.crowdstrike.com", "https"),
        ("ftp://api.crowdstrike.com", "https"),
        ("api.crowdstrike.com", "https"),
        ("https://u@api.crowdstrike.com", "user"),
        ("https://u:p@api.crowdstrike.com", "user"),
        ("https://api.crowdstrike.com?", "query"),
        ("https://api.crowdstrike.com/?a=b", "query"),
        ("https://api.crowdstrike.com#", "fragment"),
        ("https://api.crowdstrike.com/ x", "printable ASCII"),
        ("https://api.crowdstrike.com/\x00", "printable ASCII"),
        # IDNA 2003 and 2008 disagree on these: the checked and the requested
        # host would differ (claß.io is class.io to one, xn--cla-7ka.io to the other).
        ("https://claß.io", "printable ASCII"),
        ("https://\uff41\uff50\uff49.crowdstrike.com", "printable ASCII"),  # fullwidth "api"
        ("https://api.crowd\u200dstrike.com", "printable ASCII"),
        ("https://api.crowd\u00adstrike.com", "printable ASCII"),
        ("https://api.crowdstrike.com/é", "printable ASCII"),
        ("https://api.crowdstrike.com:99999", "malformed"),
        ("https://[::1", "malformed"),
        ("https://api.crowdstrike.com.evil.example", "not an allowed host"),
        ("https://evilapi.crowdstrike.com", "not an allowed host"),
        ("https://8.8.8.8", "an address"),
        ("https://169.254.169.254/latest/meta-data", "an address"),
        ("https://[fd00:ec2::254]", "an address"),
        ("https://10.1.2.3", "an address"),
        ("http://127.0.0.1:9000", "sandbox"),
        ("https://localhost", "sandbox"),
        ("http://[::1]:9000", "sandbox"),
        ("https://a.b.okta.com", "not an allowed host"),
        ("https://okta.com", "not an allowed host"),
    ],
)
def test_refused_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(DestinationError, match=why):
        _check(url, org=("*.okta.com",))


def test_loopback_only_for_a_sandbox_over_http_or_https() -> None:
    for url in ("http://127.0.0.1:9000", "https://localhost:8443", "http://[::1]:1"):
        assert _check(url, sandbox=True) == url
    # Private addresses are not loopback: never, sandbox or not.
    with pytest.raises(DestinationError):
        _check("http://192.168.1.10:9000", sandbox=True)


def test_host_patterns() -> None:
    assert host_matches("acme.okta.com", "*.okta.com")
    assert not host_matches("a.acme.okta.com", "*.okta.com")
    assert not host_matches("okta.com", "*.okta.com")
    assert not host_matches("xokta.com", "*.okta.com")
    assert check_pattern("*.Okta.COM.") == "*.okta.com"
    assert check_pattern("Falcon.Example.com") == "falcon.example.com"
    for bad in (
        "10.0.0.1",
        "localhost",
        "com",
        "*.com",
        "a..b",
        "*.*.b.com",
        "a.b.123",
        "-a.b.c",
        "claß.io",
    ):
        with pytest.raises(DestinationError):
            check_pattern(bad)


class _Fixed(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.0.0.7",),
        ("172.16.3.4",),
        ("192.168.0.1",),
        ("127.0.0.1",),
        ("169.254.169.254",),  # AWS, GCP and Azure metadata
        ("100.100.100.200",),  # Alibaba metadata (shared address space)
        ("0.0.0.0",),  # noqa: S104 -- an answer to refuse, not a bind
        ("::1",),
        ("fe80::1",),
        ("fd00:ec2::254",),  # AWS metadata over IPv6
        ("::ffff:10.0.0.1",),
        ("224.0.0.1",),
        # IPv4 inside IPv6, forwarded by a gateway: NAT64, 6to4, IPv4-compatible, SIIT.
        ("64:ff9b::a00:1",),
        ("64:ff9b::a9fe:a9fe",),
        ("64:ff9b:1::a00:1",),
        ("2002:7f00:1::1",),
        ("2002:a00:1::1",),
        ("::7f00:1",),
        ("::ffff:0:7f00:1",),
        ("93.184.216.34", "10.0.0.7"),  # one internal answer is enough
    ],
)
@pytest.mark.anyio
async def test_the_resolver_refuses_names_that_resolve_inside(addresses: tuple[str, ...]) -> None:
    resolver = PublicResolver(inner=_Fixed(*addresses))
    with pytest.raises(RefusedAddress, match="non-public address"):
        await resolver.resolve("tool.example.com", 443)


@pytest.mark.anyio
async def test_the_resolver_passes_public_answers_and_the_sandboxs_localhost() -> None:
    public = PublicResolver(inner=_Fixed("93.184.216.34", "2606:2800:220:1::"))
    answers = await public.resolve("tool.example.com", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34", "2606:2800:220:1::"]
    sandbox = PublicResolver(loopback_names=frozenset({"localhost"}), inner=_Fixed("127.0.0.1"))
    assert [a["host"] for a in await sandbox.resolve("localhost", 9000)] == ["127.0.0.1"]
    with pytest.raises(RefusedAddress):
        await sandbox.resolve("rebind.example.com", 9000)
    assert is_public("8.8.8.8")
    assert not is_public("100.64.0.1")
    # A public IPv4 address reached through NAT64 or 6to4 stays public.
    assert is_public("64:ff9b::808:808")
    assert is_public("2002:808:808::1")


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, received


@pytest.mark.anyio
async def test_the_transport_connects_to_no_name_that_resolves_to_loopback(
    local_server: tuple[int, list[bytes]],
) -> None:
    """The real system resolver: "localhost" is loopback, which a tool's name
    may not resolve to; nothing reaches the server listening there."""
    port, received = local_server
    transport = AiohttpTransport(max_response_bytes=1024)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(DestinationRefused) as info:
            await client.get(f"http://localhost:{port}/", headers={"authorization": "Bearer t"})
    assert received == []
    error = transport_failure(info.value, "Falcon", "hosts:search")
    assert isinstance(error, DestinationRefusedError)
    assert "nothing was sent" in error.detail
    assert "non-public address" in error.detail
    assert "127.0.0.1" not in error.detail  # the address is logged, not told

    sandbox = AiohttpTransport(max_response_bytes=1024, loopback_names=frozenset({"localhost"}))
    async with httpx.AsyncClient(transport=sandbox) as client:
        assert (await client.get(f"http://localhost:{port}/")).status_code == 200
    assert len(received) == 1
