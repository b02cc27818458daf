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
    config = write_toml(tmp_path, 'issuer_tag = "HFCR"\nrevocations_per_year = 3\nport = 9000\n')
    settings = load_settings(
        config,
        environ={"CERTDESK_ISSUER_TAG": "KGI", "CERTDESK_REVOCATIONS_PER_YEAR": "5"},
    )
    assert settings.issuer_tag == "KGI"
    assert settings.revocations_per_year == 5
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
            "PKCS12_KDF_ROUNDS", "1000", "pkcs12_kdf_rounds must be at least 600000", id="kdf-1000"
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
            "revocations_per_year must not be negative",
            id="neg-quota",
        ),
        pytest.param(
            "CRL_REFRESH_HOURS",
            "36",
            "crl_refresh_hours must be at least 1 and below",
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
            "pkcs12_kdf_rounds = 1000", "pkcs12_kdf_rounds must be at least 600000", id="1000"
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
    with pytest.raises(ConfigurationError, match="pkcs12_kdf_rounds must be at least 600000"):
        load_settings(environ={}, pkcs12_kdf_rounds=1000)


def test_unreadable_or_malformed_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read configuration file"):
        load_settings(tmp_path / "missing.toml", environ={})
    broken = write_toml(tmp_path, "issuer_tag = \n")
    with pytest.raises(
        ConfigurationError, match=r"cannot read configuration file .*certdesk\.toml"
    ):
        load_settings(broken, environ={})
