"""Settings: defaults, then a TOML file, then `CERTDESK_*` variables, then explicit overrides.

A bad value stops the process at load time with one clear line naming the setting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from certcore.config import Settings, load_settings
from certcore.errors import ConfigurationError


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "certdesk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_business_rules_of_design_section_3() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.validity_months == 12
    assert settings.renewal_window_days == 30
    assert settings.revocations_per_year == 2
    assert settings.customer_key == "rsa2048"
    assert settings.pkcs12_kdf_rounds == 600_000
    assert settings.crl_validity_hours <= 48
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.data_dir == Path("var")
    assert settings.extra == {}


def test_urls_are_built_from_the_public_url() -> None:
    settings = load_settings(environ={"CERTDESK_PUBLIC_URL": "https://pki.example.com.tw/"})
    assert settings.crl_url == "https://pki.example.com.tw/crl"
    assert settings.ocsp_url == "https://pki.example.com.tw/ocsp"
    assert settings.ca_issuers_url == "https://pki.example.com.tw/ca.cer"


def test_embedded_database_lives_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    assert settings.database == f"sqlite+aiosqlite:///{tmp_path.resolve()}/certdesk.sqlite3"
    url = "postgresql+asyncpg://certdesk@db/certdesk"
    assert load_settings(environ={"CERTDESK_DATABASE_URL": url}).database == url


def test_toml_file_sets_values(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        """
        issuer_tag = "HFCR"
        renewal_window_days = 45
        customer_key = "p256"
        data_dir = "/srv/certdesk"
        """,
    )
    settings = load_settings(config, environ={})
    assert settings.issuer_tag == "HFCR"
    assert settings.renewal_window_days == 45
    assert settings.customer_key == "p256"
    assert settings.data_dir == Path("/srv/certdesk")
    assert settings.validity_months == 12  # untouched: still the default


def test_config_file_can_be_named_by_the_environment(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'issuer_tag = "HFCR"\n')
    settings = load_settings(environ={"CERTDESK_CONFIG": str(config)})
    assert settings.issuer_tag == "HFCR"


def test_environment_overrides_toml(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'issuer_tag = "HFCR"\nrevocations_per_year = 1\nport = 9000\n')
    settings = load_settings(
        config,
        environ={"CERTDESK_ISSUER_TAG": "KGI", "CERTDESK_REVOCATIONS_PER_YEAR": "0"},
    )
    assert settings.issuer_tag == "KGI"
    assert settings.revocations_per_year == 0
    assert settings.port == 9000  # from the file: no variable for it


def test_explicit_overrides_beat_the_environment_and_none_is_ignored(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"CERTDESK_DATA_DIR": "/from/env", "CERTDESK_PORT": "9000"},
        data_dir=tmp_path,
        port=None,
    )
    assert settings.data_dir == tmp_path
    assert settings.port == 9000


def test_empty_variable_means_unset() -> None:
    assert load_settings(environ={"CERTDESK_ISSUER_TAG": ""}).issuer_tag == "CERTDESK"


def test_unknown_toml_keys_are_kept_in_extra(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        """
        issuer_tag = "HFCR"
        x_branch_note = "pilot at the Taipei head office"

        [x_channel_plugin]
        token_file = "/run/secrets/plugin"
        """,
    )
    settings = load_settings(config, environ={})
    assert settings.issuer_tag == "HFCR"
    assert settings.extra == {
        "x_branch_note": "pilot at the Taipei head office",
        "x_channel_plugin": {"token_file": "/run/secrets/plugin"},
    }


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param(
            "CUSTOMER_KEY",
            "rsa1024",
            "customer_key must be one of rsa2048, rsa3072, p256",
            id="rsa1024",
        ),
        pytest.param(
            "CRL_VALIDITY_HOURS", "49", "crl_validity_hours must be between 1 and 48", id="crl-49h"
        ),
        pytest.param(
            "PKCS12_KDF_ROUNDS",
            "1000",
            "pkcs12_kdf_rounds must be between 600000 and 6000000",
            id="kdf-1000",
        ),
        pytest.param("PORT", "eighty", "port = 'eighty'", id="non-integer"),
        pytest.param("VALIDITY_MONTHS", "12.5", "validity_months = '12.5'", id="decimal-months"),
        pytest.param("VALIDITY_MONTHS", "0", "validity_months must be between 1 and 27", id="0-mo"),
        pytest.param(
            "VALIDITY_MONTHS", "28", "validity_months must be between 1 and 27", id="28-mo"
        ),
        pytest.param(
            "RENEWAL_WINDOW_DAYS",
            "91",
            "renewal_window_days must be between 1 and 90",
            id="91-days",
        ),
        pytest.param(
            "REVOCATIONS_PER_YEAR",
            "-1",
            "revocations_per_year must be between 0 and 2",
            id="neg-quota",
        ),
        pytest.param(
            "CRL_REFRESH_HOURS",
            "36",
            "crl_refresh_hours must be between 1 and 24",
            id="refresh",
        ),
        pytest.param("PUBLIC_URL", "ftp://pki.example", "public_url must be an http", id="ftp-url"),
        pytest.param(
            "ISSUER_TAG", "HF-CR", "issuer_tag must be ASCII letters and digits", id="tag"
        ),
        pytest.param(
            "ISSUER_TAG", "富邦", "issuer_tag must be ASCII letters and digits", id="cjk-tag"
        ),
        pytest.param(
            "TRUSTED_PROXIES", "10.0.0.1, proxy.local", "trusted_proxies must be IP", id="proxy"
        ),
        pytest.param(
            "IDENTITY_ID_FAILURES_PER_DAY",
            "10",
            "identity_chat_failures_per_day must be at least identity_max_failures and below",
            id="id-ceiling-reachable-by-one-client",
        ),
    ],
)
def test_bad_environment_values_are_refused(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"CERTDESK_" + variable: value})
    text = str(caught.value)
    assert text.startswith("invalid configuration: ")
    assert message in text
    assert "\n" not in text  # one clear line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param('customer_key = "rsa1024"', "customer_key must be one of", id="rsa1024"),
        pytest.param(
            "crl_validity_hours = 49", "crl_validity_hours must be between 1 and 48", id="49h"
        ),
        pytest.param(
            "pkcs12_kdf_rounds = 1000",
            "pkcs12_kdf_rounds must be between 600000 and 6000000",
            id="1000",
        ),
        pytest.param('port = "eighty"', "port = 'eighty'", id="string-for-integer"),
        pytest.param("validity_months = 12.5", "validity_months = 12.5", id="float-for-integer"),
        pytest.param("validity_months = true", "validity_months = True", id="bool-for-integer"),
        pytest.param("validity_months = [12]", "validity_months = [12]", id="list-for-integer"),
    ],
)
def test_bad_toml_values_are_refused(tmp_path: Path, line: str, message: str) -> None:
    config = write_toml(tmp_path, line + "\n")
    with pytest.raises(ConfigurationError, match=r"^invalid configuration: ") as caught:
        load_settings(config, environ={})
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            environ={"CERTDESK_CUSTOMER_KEY": "rsa1024", "CERTDESK_CRL_VALIDITY_HOURS": "49"}
        )
    assert "customer_key" in str(caught.value)
    assert "crl_validity_hours" in str(caught.value)


def test_explicit_overrides_are_validated_too() -> None:
    with pytest.raises(ConfigurationError, match="pkcs12_kdf_rounds must be between 600000"):
        load_settings(environ={}, pkcs12_kdf_rounds=1000)


def test_unreadable_or_malformed_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read configuration file"):
        load_settings(tmp_path / "missing.toml", environ={})
    broken = write_toml(tmp_path, "issuer_tag = \n")
    with pytest.raises(
        ConfigurationError, match=r"cannot read configuration file .*certdesk\.toml"
    ):
        load_settings(broken, environ={})


# -- every number bounded by the rules it serves (DESIGN §3–§4) -------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("OTP_MAX_ATTEMPTS", "100000000", "otp_max_attempts must be between 1 and 5"),
        pytest.param("OTP_MAX_ATTEMPTS", "6", "otp_max_attempts must be between 1 and 5"),
        pytest.param("IDENTITY_MAX_FAILURES", "6", "identity_max_failures must be between 1 and 5"),
        pytest.param("IDENTITY_LOCK_MINUTES", "14", "identity_lock_minutes must be between 15"),
        pytest.param("IDENTITY_LOCK_MINUTES", "1441", "identity_lock_minutes must be between 15"),
        pytest.param("OTP_SENDS_PER_HOUR", "6", "otp_sends_per_hour must be between 1 and 5"),
        pytest.param("OTP_SENDS_PER_DAY", "11", "otp_sends_per_day must be between 1 and 10"),
        pytest.param("OTP_RESEND_SECONDS", "59", "otp_resend_seconds must be between 60 and 600"),
        pytest.param("OTP_RESEND_SECONDS", "301", "otp_resend_seconds must not exceed"),
        pytest.param(
            "DELIVERY_WINDOW_MINUTES", "16", "delivery_window_minutes must be between 1 and 15"
        ),
        pytest.param(
            "DELIVERY_MAX_DOWNLOADS", "4", "delivery_max_downloads must be between 1 and 3"
        ),
        pytest.param("REVOCATIONS_PER_YEAR", "3", "revocations_per_year must be between 0 and 2"),
        pytest.param("CRL_REFRESH_HOURS", "25", "crl_refresh_hours must be between 1 and 24"),
        pytest.param("OCSP_VALIDITY_HOURS", "169", "ocsp_validity_hours must be between 2 and 168"),
        pytest.param(
            "PKCS12_KDF_ROUNDS",
            "6000001",
            "pkcs12_kdf_rounds must be between 600000 and 6000000",
        ),
        pytest.param("SENSITIVE_FLOW_MINUTES", "31", "sensitive_flow_minutes must be between 1"),
        pytest.param("FLOW_IDLE_MINUTES", "1441", "flow_idle_minutes must be between 1 and 1440"),
        pytest.param(
            "PENDING_RECOVERY_MINUTES", "0", "pending_recovery_minutes must be between 1 and 1440"
        ),
        pytest.param("PORT", "70000", "port must be between 1 and 65535"),
        pytest.param("PORT", "0", "port must be between 1 and 65535"),
        pytest.param("SMTP_PORT", "65536", "smtp_port must be between 1 and 65535"),
    ],
)
def test_every_number_stays_within_what_the_rules_allow(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"CERTDESK_" + variable: value})
    text = str(caught.value)
    assert text.startswith("invalid configuration: ") and "\n" not in text
    assert message in text


def test_the_strictest_settings_the_rules_allow_are_accepted() -> None:
    settings = load_settings(
        environ={},
        otp_max_attempts=1,
        identity_max_failures=1,
        identity_lock_minutes=24 * 60,
        otp_lifetime_minutes=1,
        otp_resend_seconds=60,
        otp_sends_per_hour=1,
        otp_sends_per_day=1,
        delivery_window_minutes=1,
        delivery_max_downloads=1,
        revocations_per_year=0,
    )
    assert settings.otp_max_attempts == 1 and settings.revocations_per_year == 0


INTEGER_SETTINGS = [
    name for name, spec in Settings.__dataclass_fields__.items() if spec.type == "int"
]


@pytest.mark.parametrize("digits", [30, 5000], ids=["30 digits", "5000 digits"])
@pytest.mark.parametrize("name", INTEGER_SETTINGS)
def test_a_huge_number_is_one_line_naming_the_setting(
    tmp_path: Path, name: str, digits: int
) -> None:
    """Before: 30 digits passed validation and overflowed a timedelta at start (a traceback);
    5,000 digits exceed Python's integer-string limit (a traceback from the TOML reader)."""
    huge = "9" * digits
    for load in (
        lambda: load_settings(environ={"CERTDESK_" + name.upper(): huge}),
        lambda: load_settings(write_toml(tmp_path, f"{name} = {huge}\n"), environ={}),
    ):
        with pytest.raises(ConfigurationError) as caught:
            load()
        text = str(caught.value)
        assert name in text or "certdesk.toml" in text
        assert "\n" not in text and len(text) < 300


# -- what the certificates carry: refused at load, not at a customer's issuance ---------------


@pytest.mark.parametrize(
    ("oid", "message"),
    [
        pytest.param("1.2.x", "policy_oid must be a dotted OID", id="letter"),
        pytest.param("1", "policy_oid must be a dotted OID", id="one-arc"),
        pytest.param("1..2", "policy_oid must be a dotted OID", id="empty-arc"),
        pytest.param("１.２.３", "policy_oid must be a dotted OID", id="full-width"),
        pytest.param("3.1", "policy_oid is not a valid OID", id="first-arc-3"),
        pytest.param("1.40.5", "policy_oid is not a valid OID", id="second-arc-40"),
        pytest.param("1.3.4294967296", "policy_oid arcs must be below 2**32", id="2**32"),
        pytest.param("1.3." + "9" * 5000, "policy_oid arcs must be below 2**32", id="5000"),
    ],
)
def test_a_policy_oid_no_certificate_can_carry_is_refused_at_load(oid: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"CERTDESK_POLICY_OID": oid})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("https://憑證.example.com.tw", "public_url must be ASCII", id="idn"),
        pytest.param("https://pki.example.com.tw/證書", "public_url must be ASCII", id="path"),
        pytest.param("https://", "public_url must be an http", id="no-host"),
        pytest.param("https://pki.example .tw", "public_url must be an http", id="space"),
        pytest.param("https://pki.example.tw:99999", "public_url must be an http", id="port"),
    ],
)
def test_a_public_url_no_certificate_can_carry_is_refused_at_load(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"CERTDESK_PUBLIC_URL": url})
    assert message in str(caught.value)


def test_an_international_host_in_its_ascii_form_is_accepted() -> None:
    url = "https://xn--ndsy35a.example.com.tw"
    assert load_settings(environ={"CERTDESK_PUBLIC_URL": url}).crl_url == f"{url}/crl"


@pytest.mark.parametrize(
    ("value", "milestones"),
    [("30,7", (30, 7)), ("7, 30 ,60", (60, 30, 7)), ("1,90,1", (90, 1)), ("14", (14,))],
)
def test_reminder_days_are_a_list_furthest_first(value: str, milestones: tuple[int, ...]) -> None:
    settings = load_settings(environ={"CERTDESK_REMINDER_DAYS": value})
    assert settings.reminder_milestones == milestones


@pytest.mark.parametrize("value", ["0", "91", "30,0", "-7", "30;7", "x", ",", "7.5"])
def test_reminder_days_outside_1_to_90_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="reminder_days must be whole numbers between 1"):
        load_settings(environ={"CERTDESK_REMINDER_DAYS": value})


@pytest.mark.parametrize("value", ["9:00", "24:00", "21:60", "21:00:00", "2100", "", "ab:cd"])
def test_quiet_hours_must_be_hh_mm(value: str) -> None:
    with pytest.raises(ConfigurationError, match="reminder_quiet_start must be a time of day"):
        load_settings(environ={}, reminder_quiet_start=value or " ")


def test_reminder_sweep_settings_default_and_bounds() -> None:
    settings = load_settings(environ={})
    assert (settings.reminder_sweep_seconds, settings.reminder_batch) == (300, 200)
    assert settings.reminder_email == "fallback"
    read = load_settings(
        environ={
            "CERTDESK_REMINDER_SWEEP_SECONDS": "60",
            "CERTDESK_REMINDER_BATCH": "1000",
            "CERTDESK_REMINDER_EMAIL": "also",
        }
    )
    assert (read.reminder_sweep_seconds, read.reminder_batch, read.reminder_email) == (
        60,
        1000,
        "also",
    )
    for name, value in [
        ("CERTDESK_REMINDER_SWEEP_SECONDS", "29"),
        ("CERTDESK_REMINDER_SWEEP_SECONDS", "3601"),
        ("CERTDESK_REMINDER_BATCH", "0"),
        ("CERTDESK_REMINDER_BATCH", "5001"),
    ]:
        with pytest.raises(ConfigurationError, match=name.removeprefix("CERTDESK_").lower()):
            load_settings(environ={name: value})
    with pytest.raises(ConfigurationError, match="reminder_email must be one of"):
        load_settings(environ={"CERTDESK_REMINDER_EMAIL": "always"})


def test_quiet_hours_are_read_from_the_environment() -> None:
    settings = load_settings(
        environ={"CERTDESK_REMINDER_QUIET_START": "22:30", "CERTDESK_REMINDER_QUIET_END": "08:15"}
    )
    assert [t.isoformat() for t in settings.reminder_quiet_hours] == ["22:30:00", "08:15:00"]
