"""The admin API as the CLI sees it: one HTTP client and one error type.

Every answer is either JSON (returned as the bytes the API sent, so the CLI
prints exactly what the server said, or decoded into the server's own wire
types) or a ``CLIError`` carrying a stable code:

    CLIError                  a one-line failure: ``detail [code]``
      <the problem's code>    the API refused (RFC 9457 problem+json): its code and detail
      http_<status>           an error answer that is not a problem (a proxy's HTML page)
      api_unreachable         nothing reached the API: refused, DNS, TLS, connect timeout
      api_no_answer           the request went out but no answer came: it may have been applied
      bad_response            the answer is not the ARX API's (not JSON, a redirect)

``CLIError`` is not an ``ARXError``: those map a class to an HTTP status the
server answers with, whereas the CLI relays whatever code the server sent.

The credential goes in the Authorization header only. No message built here
quotes a request or response body, so a secret sent or received cannot end
up on stderr.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import BinaryIO, Self, TypeVar

import httpx
import msgspec

T = TypeVar("T")

# Admin calls are small and a person is waiting: a connection that takes more
# than a few seconds will not succeed, and an answer slower than the read
# timeout means a sick server, not a big result (audit pages are capped at 1000).
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# An export may be long, but never silent: the server sends a page at a time.
EXPORT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# Transport failures before anything was sent: nothing can have taken effect.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)


class CLIError(Exception):
    """A failure the CLI reports as one line, ``detail [code]``, and exit status 1."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code

    def __str__(self) -> str:
        return f"{self.detail} [{self.code}]"


class _Problem(msgspec.Struct, frozen=True):
    code: str
    detail: str = ""
    title: str = ""


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash, if it can name the API."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise CLIError(f"ARX_URL / --url is not a URL: {url!r}", "config_error") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise CLIError(
            f"ARX_URL / --url must be an http(s) URL with a host, got {url!r}", "config_error"
        )
    if parsed.userinfo:
        # It would be printed in error messages, and the credential has its own channel.
        raise CLIError("ARX_URL / --url must not carry a user or password", "config_error")
    return url.rstrip("/")


class AdminClient:
    """A synchronous client of ``/v1/admin`` for one credential."""

    def __init__(
        self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = check_base_url(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {token}", "accept": "application/json"},
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        body: msgspec.Struct | None = None,
        params: Mapping[str, int | str] | None = None,
        upload: tuple[bytes, str] | None = None,
        read_timeout: float | None = None,
    ) -> bytes:
        """The answer's JSON bytes, or ``CLIError``. ``upload``: raw content and
        its media type (a bundle archive) instead of a JSON ``body``;
        ``read_timeout`` for an answer known to take long (a verify)."""
        content = msgspec.json.encode(body) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        if upload is not None:
            content, headers = upload[0], {"content-type": upload[1]}
        try:
            timeout = (
                httpx.Timeout(read_timeout, connect=TIMEOUT.connect) if read_timeout else TIMEOUT
            )
            resp = self._http.request(
                method,
                path,
                content=content,
                headers=headers,
                params=dict(params or {}),
                timeout=timeout,
            )
        except _NOT_SENT as exc:
            raise self._unreachable(exc) from None
        except httpx.TransportError as exc:
            raise CLIError(
                f"{method} {path}: the request was sent but no answer came ({_reason(exc)}); "
                "it may or may not have taken effect",
                "api_no_answer",
            ) from None
        if not resp.is_success:
            raise _error(resp)
        try:
            msgspec.json.decode(resp.content)
        except msgspec.DecodeError:
            raise CLIError(
                f"{method} {path}: the answer from {self.base_url} is not JSON; "
                "does ARX_URL / --url name the ARX API?",
                "bad_response",
            ) from None
        return resp.content

    def _unreachable(self, exc: httpx.TransportError) -> CLIError:
        return CLIError(
            f"cannot reach the ARX API at {self.base_url}: {_reason(exc)}", "api_unreachable"
        )

    def download(
        self, path: str, sink: BinaryIO, *, params: Mapping[str, int | str] | None = None
    ) -> int:
        """``GET path`` written to ``sink`` as it arrives (an export); the byte
        count. A transfer cut short is an error, never a short file taken for
        a whole one (the server ends a complete stream with its last chunk)."""
        written = 0
        try:
            with self._http.stream(
                "GET", path, params=dict(params or {}), timeout=EXPORT_TIMEOUT
            ) as resp:
                if not resp.is_success:
                    resp.read()
                    raise _error(resp)
                for chunk in resp.iter_bytes():
                    sink.write(chunk)
                    written += len(chunk)
        except _NOT_SENT as exc:
            raise self._unreachable(exc) from None
        except httpx.TransportError as exc:
            raise CLIError(
                f"GET {path}: the transfer was cut short after {written} bytes "
                f"({_reason(exc)}); what was written is incomplete",
                "transfer_incomplete",
            ) from None
        return written

    def get_as(self, path: str, type_: type[T]) -> T:
        """``GET path`` decoded into one of the API's wire types."""
        return decode_as(self.send("GET", path), type_, f"GET {path}: the answer")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def decode_as(raw: bytes, type_: type[T], what: str) -> T:
    """An answer of the API decoded into its wire type; ``what`` names it."""
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise CLIError(
            f"{what} does not have the expected shape ({exc}); "
            "is the server a different ARX version?",
            "bad_response",
        ) from None


def _reason(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__


def _error(resp: httpx.Response) -> CLIError:
    if resp.is_redirect:
        return CLIError(
            f"{resp.request.method} {resp.request.url.path}: the server redirects "
            f"({resp.status_code}); does ARX_URL / --url name the ARX API?",
            "bad_response",
        )
    try:
        problem = msgspec.json.decode(resp.content, type=_Problem)
    except msgspec.DecodeError:
        return CLIError(
            f"{resp.request.method} {resp.request.url.path}: HTTP {resp.status_code} "
            f"{resp.reason_phrase} (not an ARX problem answer)",
            f"http_{resp.status_code}",
        )
    return CLIError(problem.detail or problem.title or f"HTTP {resp.status_code}", problem.code)
