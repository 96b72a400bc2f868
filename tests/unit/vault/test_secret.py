"""``Secret``: every accidental way out is closed; ``reveal()`` is the one way."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
import traceback

import msgspec
import pytest
from rich.console import Console
from rich.pretty import Pretty

from arx.vault.secret import Secret, reveal_hook, secret_dec_hook, secret_schema_hook

VALUE = "s3cr3t-Value-7f1e2d"


class Holder(msgspec.Struct, frozen=True):
    name: str
    token: Secret
    extra: Secret | None = None


def test_every_text_form_is_redacted() -> None:
    secret = Secret(VALUE)
    holder = Holder("x", secret)
    for text in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        "%s %r" % (secret, secret),  # noqa: UP031 -- the old formatting is a way out too
        "{}".format(secret),  # noqa: UP032 -- likewise
        repr(holder),
        str([secret, {"k": secret}]),
    ):
        assert VALUE not in text
        assert "***" in text
    assert secret.reveal() == VALUE


def test_rich_shows_the_redacted_form() -> None:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(Pretty(Holder("x", Secret(VALUE))))
    assert VALUE not in out.getvalue()
    assert "***" in out.getvalue()


def test_logging_and_tracebacks_show_the_redacted_form(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(VALUE)
    with caplog.at_level(logging.INFO):
        logging.getLogger("arx.test").info("token %s in %r", secret, Holder("x", secret))
    assert VALUE not in caplog.text

    def fail(token: Secret) -> None:
        raise ValueError(f"refused {token}")

    with pytest.raises(ValueError, match="refused") as info:
        fail(secret)
    summary = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    text = "".join(summary.format())
    assert "token = Secret('***')" in text
    assert VALUE not in text


def test_pickling_and_encoding_refuse() -> None:
    secret = Secret(VALUE)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(secret, protocol=protocol)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(Holder("x", secret), protocol=protocol)
    with pytest.raises(TypeError):
        msgspec.json.encode(Holder("x", secret))
    with pytest.raises(TypeError):
        msgspec.msgpack.encode(secret)
    with pytest.raises(TypeError):
        json.dumps({"token": secret})
    assert msgspec.to_builtins({"t": secret}, enc_hook=str) == {"t": "***"}


def test_the_vaults_hooks_round_trip_and_only_they_reveal() -> None:
    sealed = msgspec.json.encode(Holder("x", Secret(VALUE)), enc_hook=reveal_hook)
    assert VALUE.encode() in sealed
    opened = msgspec.json.decode(sealed, type=Holder, dec_hook=secret_dec_hook)
    assert opened.token.reveal() == VALUE
    assert opened.extra is None
    assert opened == Holder("x", Secret(VALUE))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.token") as info:
        msgspec.json.decode(b'{"name": "x", "token": 12345}', type=Holder, dec_hook=secret_dec_hook)
    assert "12345" not in str(info.value)
    with pytest.raises(msgspec.ValidationError, match="must not be empty"):
        msgspec.json.decode(b'{"name": "x", "token": ""}', type=Holder, dec_hook=secret_dec_hook)


def test_equality_without_a_hash_and_copies_are_the_same_value() -> None:
    secret = Secret(VALUE)
    assert secret == Secret(VALUE)
    assert secret != Secret(VALUE + "x")
    assert secret != VALUE  # never equal to its plaintext: no oracle by comparison
    with pytest.raises(TypeError):
        hash(secret)
    assert copy.copy(secret) is secret
    assert copy.deepcopy(Holder("x", secret)).token is secret
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_the_schema_is_a_write_only_string() -> None:
    schema = msgspec.json.schema(Holder, schema_hook=secret_schema_hook)
    token = schema["$defs"]["Holder"]["properties"]["token"]
    assert token == {"type": "string", "writeOnly": True, "minLength": 1}
