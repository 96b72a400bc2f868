"""One HTTP attempt at a vendor, and what its answer means for the queue.

An attempt ends in one of three ways: delivered; worth retrying (no answer,
a timeout, 5xx, 429 with its Retry-After, Slack's ``ratelimited``); or not
(any other 4xx, a redirect, Slack's ``invalid_auth`` or
``channel_not_found``: retrying cannot fix a revoked token, a person must).
The error recorded is built here from what was classified, a status code and
a vendor's error code when it is a short token, never from the vendor's free
text, an exception message or the URL, so no secret can reach ``last_error``
or a log line. An answer from anywhere but the vendor (a local receiver) is
recorded by its status class only (``HTTP 4xx``), so ``last_error`` cannot
tell a person what a local port answered. Answers are read up to a small
limit. Redirects are not followed: a webhook URL is a credential, and must
not be replayed to wherever a 3xx points.

Each request is bounded as a whole (connecting, sending, every byte of the
answer) by ``asyncio.timeout``: httpx's own timeouts bound each read, so a
server trickling a byte at a time would otherwise hold an attempt for as
long as it likes.

httpx logs every request's full URL at INFO; a webhook URL is a secret, so
this module's import installs a filter that keeps only the origin.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import httpx

# Enough for any vendor's answer to a post; more is not read.
MAX_ANSWER_BYTES = 64 * 1024
# A Retry-After beyond this is not waited for longer than this.
MAX_RETRY_AFTER_SECONDS = 3600.0
_VENDOR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    error: str | None = None
    retry: bool = False
    retry_after: float | None = None


DELIVERED = Outcome(delivered=True)


def failed(error: str) -> Outcome:
    return Outcome(delivered=False, error=error)


def retryable(error: str, retry_after: float | None = None) -> Outcome:
    return Outcome(delivered=False, error=error, retry=True, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


def vendor_code(text: str | bytes | None) -> str | None:
    """A vendor's error code (``channel_not_found``) when the text is just one."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = (text or "").strip()
    return text if _VENDOR_CODE.fullmatch(text) else None


def retry_after_of(headers: httpx.Headers) -> float | None:
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def by_status(answer: Answer, *, code: str | None = None, detailed: bool = True) -> Outcome:
    """The meaning of a non-2xx answer (``code``: the vendor's error code, if
    any). Not ``detailed`` (not the vendor's host): the status class only."""
    if detailed:
        what = f"HTTP {answer.status}" + (f" {code}" if code else "")
    else:
        what = f"HTTP {answer.status // 100}xx"
    if answer.status == 429:
        return retryable(f"{what} (rate limited)", retry_after_of(answer.headers))
    if answer.status >= 500 or answer.status == 408:
        return retryable(what)
    if 300 <= answer.status < 400:
        return failed(f"{what}: redirects are not followed")
    return failed(what)


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    headers: dict[str, str],
    seconds: float,
) -> Answer | Outcome:
    """POST ``body``; the answer, or the ``Outcome`` of a request that got none."""
    return await _send(http, "POST", url, body, headers=headers, seconds=seconds)


async def get(
    http: httpx.AsyncClient,
    url: str,
    *,
    params: dict[str, str],
    headers: dict[str, str],
    seconds: float,
) -> Answer | Outcome:
    return await _send(http, "GET", url, None, headers=headers, seconds=seconds, params=params)


async def _send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    body: bytes | None,
    *,
    headers: dict[str, str],
    seconds: float,
    params: dict[str, str] | None = None,
) -> Answer | Outcome:
    """One request, bounded as a whole by ``seconds``."""
    try:
        request = http.build_request(
            method,
            url,
            content=body,
            params=params,
            headers=headers,
            timeout=httpx.Timeout(seconds, connect=min(seconds, 5.0)),
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return failed("the configured URL cannot be used")
    try:
        async with asyncio.timeout(seconds):
            return await _exchange(http, request)
    except (TimeoutError, httpx.TimeoutException):
        return retryable(f"no answer within {seconds:g} s")
    except httpx.UnsupportedProtocol:
        return failed("the configured URL cannot be used")
    except httpx.TransportError as exc:
        return retryable(f"connection failed ({type(exc).__name__})")


async def _exchange(http: httpx.AsyncClient, request: httpx.Request) -> Answer:
    response = await http.send(request, stream=True, follow_redirects=False)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ANSWER_BYTES:
                break
    finally:
        await response.aclose()
    return Answer(
        status=response.status_code,
        headers=response.headers,
        body=b"".join(chunks)[:MAX_ANSWER_BYTES],
    )


# --- logs ----------------------------------------------------------------------------


class _OriginOnly(logging.Filter):
    """Rewrites httpx's "HTTP Request: METHOD URL ..." lines to show the origin only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[1], httpx.URL):
            url: httpx.URL = args[1]
            port = f":{url.port}" if url.port else ""
            record.args = (args[0], f"{url.scheme}://{url.host}{port}/…", *args[2:])
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _OriginOnly) for f in logger.filters):
        logger.addFilter(_OriginOnly())


_install_log_filter()
