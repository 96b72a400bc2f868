"""Settings: every timeout, limit and size is bounded, and a bad one is refused
at start-up with the variable's name, never discovered under load."""

from __future__ import annotations

import pytest

from arx.config import KILL_AFTER_DECISION, TEST_FAULTS_ACK, ConfigError, Settings, load_settings

BASE = {"ARX_DATABASE_URL": "postgresql://arx_app@127.0.0.1/arx"}


def test_defaults_come_from_the_struct_alone() -> None:
    loaded = load_settings(BASE)
    assert loaded == Settings(database_url=BASE["ARX_DATABASE_URL"])
    assert loaded.execute_deadline_seconds == 30.0
    assert loaded.opa_timeout_seconds == 2.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARX_EXECUTE_DEADLINE_SECONDS", "0"),
        ("ARX_EXECUTE_DEADLINE_SECONDS", "-5"),
        ("ARX_EXECUTE_DEADLINE_SECONDS", "600"),  # past the idempotency re-claim age
        ("ARX_OPA_TIMEOUT_SECONDS", "0"),
        ("ARX_OPA_TIMEOUT_SECONDS", "-0.1"),
        ("ARX_CONNECTOR_TIMEOUT_SECONDS", "0"),
        ("ARX_DB_POOL_WAIT_SECONDS", "0"),
        ("ARX_DB_STATEMENT_TIMEOUT_SECONDS", "0"),
        ("ARX_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", "-1"),
        ("ARX_AUTH_CACHE_SECONDS", "0"),
        ("ARX_MAX_BODY_BYTES", "0"),
        ("ARX_MAX_TOOL_RESPONSE_BYTES", "10"),
        ("ARX_DB_POOL_MAX", "0"),
        ("ARX_SESSION_RECENT", "101"),
        ("ARX_APPROVAL_TTL_SECONDS", "0"),
        ("ARX_OPA_TIMEOUT_SECONDS", "two"),
        ("ARX_DB_POOL_MIN", "1.5"),
    ],
)
def test_an_out_of_bounds_setting_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({**BASE, variable: value})


def test_pool_min_above_max_is_refused() -> None:
    with pytest.raises(ConfigError, match="ARX_DB_POOL_MIN"):
        load_settings({**BASE, "ARX_DB_POOL_MIN": "5", "ARX_DB_POOL_MAX": "4"})


def test_values_in_bounds_are_taken() -> None:
    loaded = load_settings(
        {
            **BASE,
            "ARX_EXECUTE_DEADLINE_SECONDS": "10",
            "ARX_OPA_TIMEOUT_SECONDS": "0.5",
            "ARX_MAX_TOOL_RESPONSE_BYTES": "2048",
            "ARX_SESSION_RECENT": "0",
            "ARX_SPOOL_DIR": "/var/lib/arx/spool",
            "ARX_OPA_URL": "http://127.0.0.1:8181/",
        }
    )
    assert loaded.execute_deadline_seconds == 10.0
    assert loaded.opa_timeout_seconds == 0.5
    assert loaded.max_tool_response_bytes == 2048
    assert loaded.session_recent == 0
    assert loaded.spool_dir == "/var/lib/arx/spool"
    assert loaded.opa_url == "http://127.0.0.1:8181"


def test_settings_never_print_a_secret() -> None:
    loaded = load_settings({**BASE, "ARX_ADMIN_TOKEN": "s3cret-admin"})
    assert "s3cret" not in repr(loaded)
    assert "s3cret" not in str(loaded)


@pytest.mark.parametrize(
    "env",
    [
        # The fault alone: a stray variable in a deployment.
        {"ARX_TEST_FAULT": KILL_AFTER_DECISION},
        # With anything but the exact acknowledgement.
        {"ARX_TEST_FAULT": KILL_AFTER_DECISION, "ARX_TEST_FAULTS_ALLOWED": "1"},
        {"ARX_TEST_FAULT": KILL_AFTER_DECISION, "ARX_TEST_FAULTS_ALLOWED": "true"},
        # The acknowledgement alone, left behind.
        {"ARX_TEST_FAULTS_ALLOWED": TEST_FAULTS_ACK},
        # A fault that does not exist.
        {"ARX_TEST_FAULT": "kill-sometimes", "ARX_TEST_FAULTS_ALLOWED": TEST_FAULTS_ACK},
    ],
)
def test_a_test_fault_is_refused_unless_armed_with_its_acknowledgement(
    env: dict[str, str],
) -> None:
    with pytest.raises(ConfigError, match="ARX_TEST_FAULT"):
        load_settings({**BASE, **env})


def test_a_test_fault_is_armed_only_with_its_acknowledgement() -> None:
    assert load_settings(BASE).test_fault == ""
    armed = load_settings(
        {**BASE, "ARX_TEST_FAULT": KILL_AFTER_DECISION, "ARX_TEST_FAULTS_ALLOWED": TEST_FAULTS_ACK}
    )
    assert armed.test_fault == KILL_AFTER_DECISION


def test_retired_audit_keys_are_a_comma_separated_list() -> None:
    loaded = load_settings({**BASE, "ARX_AUDIT_TRUSTED_KEY_FILES": " /k/a.pub.pem, ,/k/b.pub.pem "})
    assert loaded.audit_trusted_key_files == ("/k/a.pub.pem", "/k/b.pub.pem")
    assert load_settings(BASE).audit_trusted_key_files == ()
