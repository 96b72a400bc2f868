"""HTTP plumbing shared by connectors: the transport and what its failures mean.

What an agent must know after a failed tool call is whether the tool may
have acted. A failure before the request left ARX (no connection) means it
did not: ``ConnectorUnreachableError``. A failure after (the connection
dropped, no answer in time) means nobody knows: ``OutcomeUnknownError``, and
the agent must look before it retries. ``AiohttpTransport`` keeps that
distinction, which httpx-aiohttp's mapping loses (it reports a dropped
connection as a connect timeout), and it stops reading an answer past the
size limit.

``PublicResolver`` is its name resolution: a tool's host name that resolves
to a private, loopback, link-local (cloud metadata) or otherwise non-public
address is refused before any connection, and the connection goes to the
address that was checked (aiohttp connects to what its resolver returned).
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from collections.abc import Sequence
from urllib.parse import quote, urlencode

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from arx.errors import (
    ConnectorError,
    ConnectorUnreachableError,
    DestinationRefusedError,
    OutcomeUnknownError,
    ToolResponseTooLargeError,
)
from arx.logs import get_logger

log = get_logger("arx.connectors")

# Below the keep-alive of common servers (uvicorn: 5 s), so a pooled
# connection the server is about to close is not reused for a POST, whose
# "server disconnected" would read as an unknown outcome.
KEEPALIVE_SECONDS = 4.0
_CHUNK = 64 * 1024
# Content-Encodings the transport undoes (zlib's wbits: gzip; deflate, i.e.
# zlib-wrapped, or gzip from a confused server), and the headers that stop
# describing a body once it is decoded.
_ZLIB_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 47}
_DECODED_HEADERS = frozenset({b"content-encoding", b"content-length"})


class RefusedAddress(OSError):
    """A tool's host name resolved to an address no credential may go to."""


class DestinationRefused(httpx.ConnectError):
    """The connection was refused by ARX itself; nothing was sent."""


# IPv6 prefixes that carry an IPv4 address a gateway may forward to: NAT64
# (well-known and local-use), IPv4-compatible, and SIIT's IPv4-translated.
_EMBEDDING = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address behind the Teredo server
    if any(ip in net for net in _EMBEDDING):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    # is_global is False for private, loopback, link-local (169.254.169.254,
    # the metadata service), shared (100.64/10), reserved and unique-local.
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        # An IPv4 address inside an IPv6 one is judged as itself.
        if embedded is not None:
            return embedded.is_global and not embedded.is_multicast
    return True


class PublicResolver(AbstractResolver):
    """Resolves tools' host names to public addresses only.

    Every address of the answer must be public, or none is used: a name
    answering with one public and one internal address is a rebinding
    attempt, not a tool. ``loopback_names`` (``localhost``, when the
    operator runs a sandbox) may resolve to loopback.
    """

    def __init__(
        self,
        *,
        loopback_names: frozenset[str] = frozenset(),
        inner: AbstractResolver | None = None,
    ) -> None:
        self._loopback_names = loopback_names
        # The system's resolver (in a thread), made on first use: it needs a loop.
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        loopback_ok = host.rstrip(".").lower() in self._loopback_names
        for result in results:
            address = result["host"]
            if loopback_ok and ipaddress.ip_address(address).is_loopback:
                continue
            if not is_public(address):
                # The address is the operator's to see, not the agent's.
                log.warning(
                    "refused a tool host resolving to a non-public address",
                    extra={"host": host, "address": address},
                )
                raise RefusedAddress(
                    f"{host} resolves to a non-public address: no credential is sent there"
                )
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


class ResponseTooLarge(httpx.TransportError):
    """The tool's answer was longer than the connector may read."""


class UndecodableResponse(httpx.TransportError):
    """The tool's answer came in an encoding ARX cannot undo."""


class _NoCookies(httpx.Cookies):
    """A cookie jar that never keeps one."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return


class ToolClient(httpx.AsyncClient):
    """The ``httpx.AsyncClient`` all connectors share: it keeps no cookies.

    One client calls the tools of every org. A cookie jar would let a cookie
    a tool set on org A's call ride along on org B's next call to the same
    host; connectors authenticate every request explicitly instead. (Not
    parsing each answer's headers into a jar also saves a quarter of the
    client's CPU per call.)
    """

    @property
    def cookies(self) -> httpx.Cookies:
        # A new, empty jar each time: whatever is put in one is dropped.
        return _NoCookies()

    @cookies.setter
    def cookies(self, cookies: httpx._types.CookieTypes) -> None:
        if cookies:
            raise ValueError("connectors send no cookies: authenticate each request instead")


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's interface over one aiohttp session (half the CPU of httpcore).

    The whole answer is read here, up to ``max_response_bytes``; failures
    map to httpx's exceptions by *when* they happened (see the module doc).
    """

    def __init__(
        self,
        *,
        max_response_bytes: int,
        max_connections: int = 200,
        loopback_names: frozenset[str] = frozenset(),
    ) -> None:
        self._limit = max_response_bytes
        self._max_connections = max_connections
        self._loopback_names = loopback_names
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    keepalive_timeout=KEEPALIVE_SECONDS,
                    resolver=PublicResolver(loopback_names=self._loopback_names),
                ),
                # httpx decodes the body (its Response knows Content-Encoding).
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            ) as response:
                body = self._decoded(response, await self._read(response))
                return httpx.Response(
                    status_code=response.status,
                    # The body is decoded here: its encoding and length go.
                    headers=[
                        (name, value)
                        for name, value in response.raw_headers
                        if name.lower() not in _DECODED_HEADERS
                    ],
                    content=body,
                    request=request,
                )
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                raise DestinationRefused(str(exc.os_error)) from None
            raise httpx.ConnectError(type(exc).__name__) from None
        except aiohttp.ConnectionTimeoutError:
            raise httpx.ConnectTimeout("connect timeout") from None
        except aiohttp.SocketTimeoutError:
            raise httpx.ReadTimeout("read timeout") from None
        except aiohttp.ServerDisconnectedError:
            raise httpx.RemoteProtocolError("server disconnected") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx.ReadError(type(exc).__name__) from None

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        length = response.content_length
        if length is not None:
            if length > self._limit:
                raise ResponseTooLarge(f"{length} bytes announced")
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(_CHUNK):
            size += len(chunk)
            if size > self._limit:
                raise ResponseTooLarge(f"more than {self._limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _decoded(self, response: aiohttp.ClientResponse, body: bytes) -> bytes:
        """The body with its Content-Encoding undone, within the same limit.

        A few kilobytes of gzip can unpack into gigabytes: the limit applies to
        what ARX would hold, not to what crossed the wire.
        """
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return body
        wbits = _ZLIB_WBITS.get(encoding)
        if wbits is None:
            raise UndecodableResponse(f"unsupported content encoding {encoding!r}")
        inflater = zlib.decompressobj(wbits)
        try:
            decoded = inflater.decompress(body, self._limit + 1)
        except zlib.error as exc:
            raise UndecodableResponse(f"bad {encoding} body") from exc
        if len(decoded) > self._limit or inflater.unconsumed_tail:
            raise ResponseTooLarge(f"more than {self._limit} bytes once decoded")
        return decoded

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def transport_failure(
    exc: httpx.TransportError, tool: str, what: str
) -> ConnectorError | DestinationRefusedError:
    """The ARX error for a failed request to ``tool`` while doing ``what``."""
    reason = {"reason": type(exc).__name__}
    if isinstance(exc, DestinationRefused):
        return DestinationRefusedError(
            f"ARX refused to connect to {tool} for {what}; nothing was sent: {exc}"
        )
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectorUnreachableError(
            f"could not connect to {tool} for {what}; nothing was sent ({type(exc).__name__})",
            extra=reason,
        )
    if isinstance(exc, ResponseTooLarge):
        return ToolResponseTooLargeError(
            f"{tool} answered {what} with more data than ARX reads ({exc})", extra=reason
        )
    return OutcomeUnknownError(
        f"{tool} did not answer {what} ({type(exc).__name__}); it may have acted: "
        "check the tool before retrying",
        extra=reason,
    )


def tool_url(base: str, path: str, query: Sequence[tuple[str, str]] = ()) -> str:
    """``base + path`` with ``query`` percent-encoded (spaces as %20, as httpx does).

    Building the whole URL as one string costs httpx a single parse, where
    ``params=`` costs it a second one to merge them.
    """
    return f"{base}{path}?{urlencode(query, quote_via=quote)}" if query else f"{base}{path}"
