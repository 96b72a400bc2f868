"""Structured JSON logs with request id, org and agent bound from context.

Log records carry only what the code passes explicitly; nothing here ever
formats a request body, a credential or a header. CR/LF in values cannot
break a line because every record is one JSON document.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import msgspec

# ARX's own id of the request, fresh for every request (arx.api.middleware).
request_id_var: ContextVar[str | None] = ContextVar("arx_request_id", default=None)
# The caller's well-formed X-Request-ID, kept beside ARX's, never in its place.
client_request_id_var: ContextVar[str | None] = ContextVar("arx_client_request_id", default=None)
org_id_var: ContextVar[str | None] = ContextVar("arx_org_id", default=None)
agent_id_var: ContextVar[str | None] = ContextVar("arx_agent_id", default=None)

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, var in (
            ("request_id", request_id_var),
            ("client_request_id", client_request_id_var),
            ("org_id", org_id_var),
            ("agent_id", agent_id_var),
        ):
            value = var.get()
            if value is not None:
                doc[key] = value
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages from drivers can echo inputs.
            doc["exc_type"] = record.exc_info[0].__name__
        return msgspec.json.encode(doc, enc_hook=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs would duplicate our own request log line without context,
    # and httpx's per-request INFO lines would double the log volume of the
    # hot path (its URLs are loopback OPA and the tools, never credentials).
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # botocore logs KMS request and response bodies (data keys) and the
    # canonical requests it signs at DEBUG: never below WARNING, whatever
    # ARX_LOG_LEVEL says.
    for secretive in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(secretive).setLevel(logging.WARNING)
    # botocore logs KMS request and response bodies (data keys) and the
    # canonical requests it signs at DEBUG: never below WARNING, whatever
    # ARX_LOG_LEVEL says.
    for secretive in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(secretive).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
