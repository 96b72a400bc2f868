"""ARX's SAML SP against a local pysaml2 IdP (tests/fixtures/saml_idp.py).

Each refused response is validly signed over its wrong content (except the
tampered, unsigned and foreign-key ones), and each test asserts the detail,
so a refusal counts only when it comes from the check the test names.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from saml2 import md, samlp

from arx.errors import InvalidFieldError, SignInFailedError
from arx.identity.saml import SamlAssertion, SamlConfig, SamlServiceProvider
from tests.fixtures.saml_idp import (
    ACS_URL,
    IDP_ENTITY_ID,
    IDP_SSO_URL,
    SP_ENTITY_ID,
    LocalIdp,
)

SKEW = 60


@pytest.fixture(scope="module")
def sp(saml_idp: LocalIdp, tmp_path_factory: pytest.TempPathFactory) -> SamlServiceProvider:
    config = SamlConfig(
        sp_entity_id=SP_ENTITY_ID,
        acs_url=ACS_URL,
        idp_metadata_xml=saml_idp.metadata_xml,
        accepted_clock_skew_seconds=SKEW,
    )
    return SamlServiceProvider(config, state_dir=str(tmp_path_factory.mktemp("saml-sp")))


@pytest.fixture
def request_id(sp: SamlServiceProvider) -> str:
    _, rid = sp.login_redirect("state-1")
    return rid


def refusal(sp: SamlServiceProvider, response: str, request_id: str | None) -> str:
    with pytest.raises(SignInFailedError) as caught:
        sp.consume(response, request_id=request_id)
    return caught.value.detail


def assertion_id_of(response: str) -> str:
    parsed = samlp.response_from_string(base64.b64decode(response).decode())
    return str(parsed.assertion[0].id)


# --- accepted ----------------------------------------------------------------


def test_good_signed_assertion_signs_in(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    response = saml_idp.good_response(
        request_id, attributes={"email": ["alice@example.org"], "groups": ["sec", "ops"]}
    )

    result = sp.consume(response, request_id=request_id)

    assert isinstance(result, SamlAssertion)
    assert result.issuer == IDP_ENTITY_ID
    assert result.name_id == "alice@example.org"
    assert result.email == "alice@example.org"
    assert result.attributes == {"email": ["alice@example.org"], "groups": ["sec", "ops"]}
    assert result.assertion_id == assertion_id_of(response)
    assert result.in_response_to == request_id
    # Valid for 5 minutes, plus the skew during which it would still pass.
    assert abs(result.not_on_or_after - (time.time() + 300 + SKEW)) < 5


def test_signed_response_around_signed_assertion_signs_in(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    response = saml_idp.good_response(request_id, sign_response=True)

    assert sp.consume(response, request_id=request_id).name_id == "alice@example.org"


def test_email_falls_back_to_an_email_name_id_only(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    by_name_id = saml_idp.good_response(request_id, name_id="bob@example.org", attributes={})
    opaque = saml_idp.good_response(
        request_id,
        name_id="bob@example.org",
        name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        attributes={},
    )

    assert sp.consume(by_name_id, request_id=request_id).email == "bob@example.org"
    assert sp.consume(opaque, request_id=request_id).email is None


def test_expiry_within_the_clock_skew_is_accepted(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    response = saml_idp.expired_response(request_id, expired_for=dt.timedelta(seconds=20))

    assert sp.consume(response, request_id=request_id).name_id == "alice@example.org"


# --- refused -----------------------------------------------------------------


def test_tampered_assertion_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.tampered_response(request_id), request_id)

    assert "signature does not verify" in detail
    assert "mallory" not in detail


def test_unsigned_assertion_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.unsigned_response(request_id), request_id)

    assert "assertion is not signed" in detail


def test_signed_response_with_unsigned_assertion_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.signed_response_unsigned_assertion(request_id), request_id)

    assert "assertion is not signed" in detail


def test_assertion_signed_by_a_key_not_in_the_metadata_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.rogue_key_response(request_id), request_id)

    assert "signature does not verify" in detail


def test_sha1_signature_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.sha1_response(request_id), request_id)

    assert "algorithm ARX does not accept" in detail


def test_expired_assertion_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    response = saml_idp.expired_response(request_id, expired_for=dt.timedelta(seconds=SKEW + 30))

    assert refusal(sp, response, request_id) == "the assertion has expired"


def test_not_yet_valid_assertion_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    response = saml_idp.not_yet_valid_response(
        request_id, starts_in=dt.timedelta(seconds=SKEW + 30)
    )

    assert refusal(sp, response, request_id) == "the assertion is not valid yet"


def test_wrong_audience_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.wrong_audience_response(request_id), request_id)

    assert "(Audience)" in detail


def test_wrong_recipient_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.wrong_recipient_response(request_id), request_id)

    assert "(Recipient)" in detail


def test_wrong_destination_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    detail = refusal(sp, saml_idp.wrong_destination_response(request_id), request_id)

    assert "(Destination)" in detail


def test_response_to_another_request_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    _, other_request = sp.login_redirect("state-2")
    response = saml_idp.good_response(other_request)

    assert "(InResponseTo)" in refusal(sp, response, request_id)


def test_unsolicited_response_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    assert "unsolicited" in refusal(sp, saml_idp.good_response(request_id), None)


def test_response_from_another_issuer_is_refused(
    sp: SamlServiceProvider, saml_idp: LocalIdp, request_id: str
) -> None:
    response = saml_idp.response(
        request_id, tamper=lambda xml: xml.replace(IDP_ENTITY_ID, "https://evil.test/idp")
    )

    assert "not issued by the configured identity provider" in refusal(sp, response, request_id)


@pytest.mark.parametrize(
    ("posted", "expected"),
    [
        ("", "missing"),
        ("not base64!", "not base64"),
        (base64.b64encode(b"<html/>").decode(), "not a SAML 2.0 Response"),
        (
            base64.b64encode(
                b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]>'
                b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">'
                b"&a;</samlp:Response>"
            ).decode(),
            "not a SAML 2.0 Response",
        ),
        ("A" * (256 * 1024 + 4), "too large"),
    ],
    ids=["empty", "not-base64", "not-saml", "dtd", "oversized"],
)
def test_malformed_posts_are_refused(
    sp: SamlServiceProvider, request_id: str, posted: str, expected: str
) -> None:
    assert expected in refusal(sp, posted, request_id)


def test_pysaml2_logs_nothing_about_the_response(
    sp: SamlServiceProvider,
    saml_idp: LocalIdp,
    request_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    sp.consume(saml_idp.good_response(request_id), request_id=request_id)
    refusal(sp, saml_idp.tampered_response(request_id), request_id)

    assert [r for r in caplog.records if r.name.startswith("saml2")] == []


# --- the way out, and the metadata ---------------------------------------------


def test_login_redirect_carries_an_authn_request_the_idp_accepts(
    sp: SamlServiceProvider, saml_idp: LocalIdp
) -> None:
    url, request_id = sp.login_redirect("opaque-state")

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == IDP_SSO_URL
    assert query["RelayState"] == ["opaque-state"]
    request = saml_idp.parse_authn_request(query["SAMLRequest"][0])
    assert request.id == request_id
    assert request.issuer.text == SP_ENTITY_ID
    assert request.destination == IDP_SSO_URL
    assert request.assertion_consumer_service_url == ACS_URL
    assert request.protocol_binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def test_each_login_redirect_gets_a_fresh_request_id(sp: SamlServiceProvider) -> None:
    assert sp.login_redirect("s")[1] != sp.login_redirect("s")[1]


def test_relay_state_over_80_bytes_is_a_caller_error(sp: SamlServiceProvider) -> None:
    with pytest.raises(ValueError, match="80 bytes"):
        sp.login_redirect("x" * 81)


def test_sp_metadata_describes_arx_and_only_strong_algorithms(sp: SamlServiceProvider) -> None:
    descriptor = md.entity_descriptor_from_string(sp.metadata_xml())

    assert descriptor.entity_id == SP_ENTITY_ID
    spsso = descriptor.spsso_descriptor[0]
    assert spsso.want_assertions_signed == "true"
    (acs,) = spsso.assertion_consumer_service
    assert (acs.binding, acs.location) == (
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
        ACS_URL,
    )
    assert "sha1" not in sp.metadata_xml()
    assert "md5" not in sp.metadata_xml()


def test_unreadable_idp_metadata_is_an_invalid_field(tmp_path: Path) -> None:
    config = SamlConfig(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, idp_metadata_xml="<nope")

    with pytest.raises(InvalidFieldError) as caught:
        SamlServiceProvider(config, state_dir=str(tmp_path))

    assert caught.value.field == "idp_metadata_xml"
