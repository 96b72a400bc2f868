"""The connectors' transport against real sockets on loopback.

What matters to an agent after a failed call is whether the tool may have
acted: a refused connection (nothing sent) must not look like a dropped one
(sent, no answer), and an answer past the size limit is not read.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from arx.connectors.http import AiohttpTransport, ResponseTooLarge, ToolClient, transport_failure
from arx.errors import ConnectorUnreachableError, OutcomeUnknownError, ToolResponseTooLargeError

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def _drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the whole request, then hang up without a word."""
    await _read_request(reader)
    writer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await asyncio.sleep(5)


def _answer(body: bytes, *, chunked: bool) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        if chunked:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(body), 1000):
                part = body[i : i + 1000]
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    return handler


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(handler: Handler) -> str:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await handler(reader, writer)

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/x"

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


async def _post(url: str, *, limit: int = 4096, read_timeout: float = 2.0) -> httpx.Response:
    transport = AiohttpTransport(max_response_bytes=limit)
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(read_timeout, connect=1.0)
    ) as client:
        return await client.post(url, json={"ids": ["a"]})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_refused_connection_means_nothing_was_sent() -> None:
    with pytest.raises(httpx.ConnectError) as caught:
        await _post(f"http://127.0.0.1:{_closed_port()}/x")
    assert isinstance(transport_failure(caught.value, "tool", "op"), ConnectorUnreachableError)


async def test_a_dropped_connection_after_sending_is_an_unknown_outcome(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    url = await serve(_drop)
    with pytest.raises(httpx.TransportError) as caught:
        await _post(url)
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert isinstance(transport_failure(caught.value, "tool", "op"), OutcomeUnknownError)


async def test_no_answer_in_time_is_an_unknown_outcome(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    url = await serve(_silent)
    with pytest.raises(httpx.ReadTimeout) as caught:
        await _post(url, read_timeout=0.2)
    assert isinstance(transport_failure(caught.value, "tool", "op"), OutcomeUnknownError)


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_answer_past_the_limit_is_not_read(
    serve: Callable[[Handler], Awaitable[str]], chunked: bool
) -> None:
    url = await serve(_answer(b"x" * 10_000, chunked=chunked))
    with pytest.raises(ResponseTooLarge) as caught:
        await _post(url, limit=4096)
    assert isinstance(transport_failure(caught.value, "tool", "op"), ToolResponseTooLargeError)


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_answer_within_the_limit_is_read_whole(
    serve: Callable[[Handler], Awaitable[str]], chunked: bool
) -> None:
    url = await serve(_answer(b"y" * 4096, chunked=chunked))
    response = await _post(url, limit=4096)
    assert response.status_code == 200
    assert response.content == b"y" * 4096


async def test_the_shared_client_never_carries_a_cookie_from_one_call_to_the_next() -> None:
    """One client serves every org: a cookie set on org A's call must not ride
    along on org B's call to the same host."""
    seen: list[str | None] = []

    def tool(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"set-cookie": "session=org-a; Path=/"})

    async with ToolClient(transport=httpx.MockTransport(tool)) as client:
        await client.get("https://api.tool.example/x", headers={"authorization": "Bearer org-a"})
        await client.get("https://api.tool.example/x", headers={"authorization": "Bearer org-b"})
        assert not client.cookies
        client.cookies.set("planted", "by-hand")  # dropped with the jar it went into
        await client.get("https://api.tool.example/x", headers={"authorization": "Bearer org-c"})
        with pytest.raises(ValueError, match="no cookies"):
            client.cookies = {"a": "b"}  # type: ignore[assignment]
    assert seen == [None, None, None]


def _gzipped(body: bytes) -> Handler:
    packed = gzip.compress(body)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
            b"content-length: %d\r\n\r\n" % len(packed) + packed
        )
        await writer.drain()
        writer.close()

    return handler


async def test_a_compressed_answer_is_limited_by_its_decoded_size(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """Ten megabytes of zeros gzip to ten kilobytes: the limit is what ARX would hold."""
    bomb = b'{"x": "' + b"0" * 10_000_000 + b'"}'
    url = await serve(_gzipped(bomb))
    with pytest.raises(ResponseTooLarge, match="decoded"):
        await _post(url, limit=1024 * 1024)


async def test_a_compressed_answer_within_the_limit_is_decoded_once(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    url = await serve(_gzipped(b'{"resources": ["a"]}'))
    response = await _post(url, limit=4096)
    assert response.json() == {"resources": ["a"]}
    assert "content-encoding" not in response.headers
