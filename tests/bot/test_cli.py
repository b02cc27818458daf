"""The operator commands, as an operator types them.

Most commands run in-process through `bot.cli.main` (the console script's function; it calls
`asyncio.run`, so these tests are synchronous), which is fast and shows exactly what reaches
stdout and stderr. A few run as real `python -m bot` processes to prove the entry point, the
environment variables and the absence of tracebacks end to end.

Every failure must be exactly one line on stderr starting with `certdesk:`, exit code 2, and
never a traceback or a secret (an export password, a full ID number).
"""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from bench.reminders import seed_backlog
from bot.cli import main
from certcore.clock import TAIPEI
from certcore.config import load_settings
from certcore.identity import personal_id_check_digit
from certcore.reminders import ReminderPlanner, ReminderState
from certcore.storage import Database
from tests import pkitools
from tests.conftest import TEST_PASSPHRASE

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Cli2026pw"
LISTING_FIELDS = {"serial", "customer_id", "not_before", "not_after", "status", "revoked_reason"}


def valid_id(prefix9: str) -> str:
    return prefix9 + personal_id_check_digit(prefix9)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CERTDESK_* from the outside world, and ./var is the test's own."""
    for name in list(os.environ):
        if name.startswith("CERTDESK_"):
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def ca_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    """The session CA's data directory, with its passphrase in the environment."""
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", TEST_PASSPHRASE.decode())
    return data_dir


def assert_error(result: Result, *fragments: str, secrets: tuple[str, ...] = ()) -> str:
    """Exit code 2 and one line on stderr, starting with `certdesk:`; returns that line."""
    assert result.code == 2, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    line = lines[0]
    assert line.startswith("certdesk: "), line
    for fragment in fragments:
        assert fragment in line, line
    for secret in secrets:
        assert secret not in line and secret not in result.out
    return line


def listing(cli: Cli, data_dir: Path, *extra: str) -> list[dict[str, object]]:
    result = cli("cert", "list", "--json", "--data-dir", data_dir, *extra)
    assert result.code == 0, result.err
    listed: list[dict[str, object]] = json.loads(result.out)
    return listed


def masked(customer_id: str) -> str:
    return f"{customer_id[:4]}XXX{customer_id[-2:]}"


def audit_records(data_dir: Path, action: str) -> list[sqlite3.Row]:
    with sqlite3.connect(data_dir / "certdesk.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        query = "SELECT * FROM audit_log WHERE action = ? ORDER BY seq"
        return conn.execute(query, (action,)).fetchall()


def issue(
    cli: Cli, data_dir: Path, customer_id: str, out: Path, *extra: str, password: str = PASSWORD
) -> Result:
    command = ("cert", "issue", "--id", customer_id, "--password", password, "--out", out)
    return cli(*command, "--data-dir", data_dir, *extra)


def certdesk_process(*args: str | Path, env: dict[str, str], cwd: Path) -> Result:
    """`python -m bot ...` as a separate process."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *map(str, args)],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")},
            "PYTHONPATH": str(REPO),
            **env,
        },
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Result(proc.returncode, proc.stdout, proc.stderr)


# -- ca ---------------------------------------------------------------------------------------


def test_ca_init_then_a_second_init_refuses(cli: Cli, tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    first = cli("ca", "init", "--data-dir", data_dir)
    assert first.code == 0, first.err
    assert "CA created in" in first.out
    # No CERTDESK_CA_PASSPHRASE: a generated one, next to the key, both private.
    for name in ("ca-key.pem", "ca-passphrase"):
        assert (data_dir / name).stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (data_dir / "ca-key.pem").read_bytes()
    ca_before = (data_dir / "ca.pem").read_bytes()

    second = certdesk_process("ca", "init", "--data-dir", data_dir, env={}, cwd=tmp_path)
    assert_error(second, "already exists")
    assert (data_dir / "ca.pem").read_bytes() == ca_before

    # The generated passphrase is found again by the next command.
    result = issue(cli, data_dir, valid_id("A10000000"), tmp_path)
    assert result.code == 0, result.err


def test_ca_show_and_pem(cli: Cli, ca_env: Path) -> None:
    ca = x509.load_pem_x509_certificate((ca_env / "ca.pem").read_bytes())
    result = cli("ca", "show", "--data-dir", ca_env)
    assert result.code == 0, result.err
    assert f"subject:     {ca.subject.rfc4514_string()}" in result.out
    assert f"serial:      {ca.serial_number:X}" in result.out
    assert "RSAPublicKey 3072" in result.out
    assert ca.fingerprint(hashes.SHA256()).hex(":").upper() in result.out
    assert "+08:00" in result.out

    pem = cli("ca", "show", "--pem", "--data-dir", ca_env)
    assert pem.code == 0
    assert pem.out == (ca_env / "ca.pem").read_text()


def test_ca_show_without_a_ca(cli: Cli, tmp_path: Path) -> None:
    assert_error(cli("ca", "show", "--data-dir", tmp_path / "none"), "no CA in", "ca init")


# ca import: the broker's own issuing CA, generated here.

IMPORT_PASSPHRASE = "broker-ca-secret"


@dataclass(frozen=True)
class BrokerCA:
    cert: Path
    key_pkcs8: Path
    key_traditional: Path
    key_plain: Path
    other_key: Path
    leaf_cert: Path
    leaf_key: Path


def _self_signed(key: rsa.RSAPrivateKey, name: str, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC).replace(microsecond=0)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def broker_ca(tmp_path_factory: pytest.TempPathFactory) -> BrokerCA:
    root = tmp_path_factory.mktemp("broker-ca")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted = serialization.BestAvailableEncryption(IMPORT_PASSPHRASE.encode())

    def write(name: str, data: bytes) -> Path:
        (root / name).write_bytes(data)
        return root / name

    def key_pem(
        k: rsa.RSAPrivateKey,
        fmt: serialization.PrivateFormat,
        enc: serialization.KeySerializationEncryption,
    ) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, fmt, enc)

    def cert_pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    pkcs8, trad = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL
    return BrokerCA(
        cert=write("ca.pem", cert_pem(_self_signed(key, "Broker Issuing CA", ca=True))),
        key_pkcs8=write("ca-key.pem", key_pem(key, pkcs8, encrypted)),
        key_traditional=write("ca-key-trad.pem", key_pem(key, trad, encrypted)),
        key_plain=write("ca-key-plain.pem", key_pem(key, pkcs8, serialization.NoEncryption())),
        other_key=write("other-key.pem", key_pem(other, pkcs8, encrypted)),
        leaf_cert=write("leaf.pem", cert_pem(_self_signed(other, "Not a CA", ca=False))),
        leaf_key=write("leaf-key.pem", key_pem(other, pkcs8, encrypted)),
    )


@pytest.mark.parametrize("key_format", ["pkcs8", "traditional"])
def test_ca_import_wrong_then_right_passphrase(
    cli: Cli, broker_ca: BrokerCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_format: str
) -> None:
    data_dir = tmp_path / "imported"
    key = broker_ca.key_pkcs8 if key_format == "pkcs8" else broker_ca.key_traditional
    command = ("ca", "import", "--cert", broker_ca.cert, "--key", key, "--data-dir", data_dir)

    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", "not-the-passphrase")
    assert_error(cli(*command), "wrong passphrase", secrets=("not-the-passphrase",))
    assert not (data_dir / "ca.pem").exists()

    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", IMPORT_PASSPHRASE)
    result = cli(*command)
    assert result.code == 0, result.err
    assert "CA imported" in result.out
    assert IMPORT_PASSPHRASE not in result.out + result.err
    assert (data_dir / "ca.pem").read_bytes() == broker_ca.cert.read_bytes()
    assert (data_dir / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert cli("ca", "show", "--pem", "--data-dir", data_dir).out.encode() == (
        broker_ca.cert.read_bytes()
    )
    assert_error(cli(*command), "already exists")

    if key_format == "pkcs8":  # the imported CA really issues, and OpenSSL agrees
        out = tmp_path / "customer.pfx"
        assert issue(cli, data_dir, valid_id("G12345678"), out).code == 0
        _, cert, _ = pkcs12.load_key_and_certificates(out.read_bytes(), PASSWORD.encode())
        assert cert is not None
        pem = pkitools.write_pem(cert, tmp_path / "customer.pem")
        pkitools.openssl_verify(pem, broker_ca.cert)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("key_of_another_certificate", "does not belong to the certificate"),
        ("unencrypted_key", "not encrypted"),
        ("not_a_ca", "not a CA certificate"),
        ("certificate_not_pem", "not a PEM certificate"),
        ("missing_file", "cannot read"),
        ("no_passphrase", "CERTDESK_CA_PASSPHRASE"),
    ],
)
def test_ca_import_refusals(
    cli: Cli,
    broker_ca: BrokerCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    expected: str,
) -> None:
    cert, key = broker_ca.cert, broker_ca.key_pkcs8
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", IMPORT_PASSPHRASE)
    if case == "key_of_another_certificate":
        key = broker_ca.other_key
    elif case == "unencrypted_key":
        key = broker_ca.key_plain
    elif case == "not_a_ca":
        cert, key = broker_ca.leaf_cert, broker_ca.leaf_key
    elif case == "certificate_not_pem":
        cert = tmp_path / "ca.der"
        cert.write_bytes(
            x509.load_pem_x509_certificate(broker_ca.cert.read_bytes()).public_bytes(
                serialization.Encoding.DER
            )
        )
    elif case == "missing_file":
        key = tmp_path / "no-such-key.pem"
    elif case == "no_passphrase":
        monkeypatch.delenv("CERTDESK_CA_PASSPHRASE")  # and stdin is no terminal to prompt on
    data_dir = tmp_path / "var"
    result = cli("ca", "import", "--cert", cert, "--key", key, "--data-dir", data_dir)
    assert_error(result, expected, secrets=(IMPORT_PASSPHRASE,))
    assert not (data_dir / "ca.pem").exists()


def test_ca_crl_writes_a_der_crl(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    assert issue(cli, ca_env, valid_id("H12345678"), tmp_path).code == 0
    (serial,) = [row["serial"] for row in listing(cli, ca_env)]
    assert (
        cli("cert", "revoke", serial, "--reason", "affiliationChanged", "--data-dir", ca_env).code
        == 0
    )

    out = tmp_path / "ca.crl"
    result = cli("ca", "crl", "--out", out, "--data-dir", ca_env)
    assert result.code == 0, result.err
    assert str(out) in result.out
    crl = x509.load_der_x509_crl(out.read_bytes())
    ca = x509.load_pem_x509_certificate((ca_env / "ca.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(int(str(serial), 16))
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.affiliation_changed
    text = pkitools.openssl_crl_text(out, ca_env / "ca.pem")
    assert pkitools.crl_revoked_entries(text) == {int(str(serial), 16): "Affiliation Changed"}

    assert_error(
        cli("ca", "crl", "--out", tmp_path / "missing" / "ca.crl", "--data-dir", ca_env),
        "No such file or directory",
    )


# -- cert issue -------------------------------------------------------------------------------


def test_issue_out_directory_and_out_file(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    to_dir = tmp_path / "outdir"
    to_dir.mkdir()
    customer = valid_id("J12345678")
    result = issue(cli, ca_env, customer.lower(), to_dir)  # ID input is normalised
    assert result.code == 0, result.err
    assert PASSWORD not in result.out + result.err
    issued_line = result.out.splitlines()[0]
    assert f"for {masked(customer)}," in issued_line
    assert customer not in issued_line
    (written,) = to_dir.iterdir()
    (row,) = listing(cli, ca_env)
    not_after = datetime.fromisoformat(str(row["not_after"]))
    assert written.name == f"{customer}-CERTDESK({not_after:%Y-%m-%d}).pfx"
    assert f"written to {written}" in result.out
    assert str(row["serial"]) in result.out
    key, cert, chain = pkcs12.load_key_and_certificates(written.read_bytes(), PASSWORD.encode())
    assert key is not None and cert is not None and len(chain) == 1
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == customer
    loaded = pkcs12.load_pkcs12(written.read_bytes(), PASSWORD.encode())
    assert loaded.cert is not None and loaded.cert.friendly_name == written.stem.encode()

    to_file = tmp_path / "chosen-name.p12"
    other = valid_id("K12345678")
    assert issue(cli, ca_env, other, to_file).code == 0
    assert to_file.is_file()
    assert sorted(p.name for p in to_dir.iterdir()) == [written.name]
    info = pkitools.parse_pkcs12_info(pkitools.openssl_pkcs12_info(to_file, PASSWORD))
    assert all("AES-256-CBC" in algorithm for _, algorithm in info.encryptions)


def test_issue_compatible(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "compatible.pfx"
    assert issue(cli, ca_env, valid_id("L12345678"), out, "--compatible").code == 0
    info = pkitools.parse_pkcs12_info(pkitools.openssl_pkcs12_info(out, PASSWORD))
    assert info.mac_hash == "sha1"
    assert info.encryptions
    assert all("TripleDES" in algorithm for _, algorithm in info.encryptions)


@pytest.mark.parametrize(
    "bad_id",
    ["A123456788", "A12345678", "a1234567890", "Z999999999", "12345678", "A1234X6789", ""],
)
def test_issue_rejects_a_malformed_id(cli: Cli, ca_env: Path, tmp_path: Path, bad_id: str) -> None:
    result = issue(cli, ca_env, bad_id, tmp_path)
    line = assert_error(result, "--id", "checksum or format")
    if len(bad_id) >= 8:
        assert bad_id not in line  # the ID is masked even when it is wrong
    assert list(tmp_path.glob("*.pfx")) == []
    assert listing(cli, ca_env) == []


@pytest.mark.parametrize(
    "password", ["abc", "Abcdefgh12345", "abc!23", "abc 123", "pässwort1", "１２３４５"]
)
def test_issue_rejects_a_password_outside_the_policy(
    cli: Cli, ca_env: Path, tmp_path: Path, password: str
) -> None:
    result = issue(cli, ca_env, valid_id("M12345678"), tmp_path, password=password)
    assert_error(result, "4 to 12 letters", secrets=(password,))
    assert listing(cli, ca_env) == []


@pytest.mark.parametrize("password", ["abcd", "Abcdefgh1234"])
def test_issue_accepts_the_password_policy_edges(
    cli: Cli, ca_env: Path, tmp_path: Path, password: str
) -> None:
    out = tmp_path / "edge.pfx"
    result = issue(cli, ca_env, valid_id("N12345678"), out, password=password)
    assert result.code == 0, result.err
    pkcs12.load_key_and_certificates(out.read_bytes(), password.encode())


class Terminal(io.StringIO):
    """A stdin that says it is a terminal, so the command prompts for the password."""

    def isatty(self) -> bool:
        return True


def test_issue_reads_the_password_from_stdin(
    cli: Cli, ca_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\r\nnext line\n"))
    out = tmp_path / "stdin.pfx"
    command = ("cert", "issue", "--id", valid_id("M22345678"), "--password-stdin", "--out", out)
    result = cli(*command, "--data-dir", ca_env)
    assert result.code == 0, result.err
    assert PASSWORD not in result.out + result.err
    pkcs12.load_key_and_certificates(out.read_bytes(), PASSWORD.encode())


def test_issue_prompts_for_the_password_twice(
    cli: Cli, ca_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []
    typed = iter([PASSWORD, PASSWORD, PASSWORD, "Other2026"])

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(typed)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    out = tmp_path / "prompted.pfx"
    command = ("cert", "issue", "--id", valid_id("M23345678"), "--out", out, "--data-dir", ca_env)
    result = cli(*command)
    assert result.code == 0, result.err
    assert len(prompts) == 2 and "again" in prompts[1]
    pkcs12.load_key_and_certificates(out.read_bytes(), PASSWORD.encode())

    other = tmp_path / "differ.pfx"
    differ = cli(
        "cert", "issue", "--id", valid_id("M24345678"), "--out", other, "--data-dir", ca_env
    )
    assert_error(differ, "differ", secrets=(PASSWORD, "Other2026"))
    assert not other.exists() and len(listing(cli, ca_env)) == 1


def test_issue_without_a_password_or_a_terminal_refuses(
    cli: Cli, ca_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    command = ("cert", "issue", "--id", valid_id("M25345678"), "--out", tmp_path)
    assert_error(cli(*command, "--data-dir", ca_env), "--password-stdin")
    both = cli(*command, "--password", PASSWORD, "--password-stdin", "--data-dir", ca_env)
    assert_error(both, "not allowed with")
    assert listing(cli, ca_env) == []
    for subcommand in ("issue", "renew"):
        shown = cli("cert", subcommand, "--help")
        assert shown.code == 0
        text = " ".join(shown.out.split())
        assert "--password-stdin" in text and "visible to other users" in text


def test_issue_refusals(
    cli: Cli, ca_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = valid_id("P12345678")
    assert issue(cli, ca_env, customer, tmp_path).code == 0
    assert_error(issue(cli, ca_env, customer, tmp_path), "already holds certificate")
    assert_error(
        issue(cli, ca_env, valid_id("Q12345678"), tmp_path / "no" / "such" / "dir.pfx"),
        "was issued but",
        "could not be written",
    )
    assert_error(
        issue(cli, tmp_path / "empty", valid_id("R12345678"), tmp_path), "no CA in", "ca init"
    )
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", "wrong-ca-passphrase")
    assert_error(
        issue(cli, ca_env, valid_id("S12345678"), tmp_path),
        "wrong passphrase",
        secrets=("wrong-ca-passphrase",),
    )


# -- cert list / revoke / renew ---------------------------------------------------------------


def test_list_json_fields_and_filter(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    first, second = valid_id("T12345678"), valid_id("U12345678")
    assert issue(cli, ca_env, first, tmp_path / "1.pfx").code == 0
    assert issue(cli, ca_env, second, tmp_path / "2.pfx").code == 0
    rows = listing(cli, ca_env)
    assert [row["customer_id"] for row in rows] == [masked(first), masked(second)]
    revoked = cli(
        "cert", "revoke", str(rows[0]["serial"]), "--reason", "keyCompromise", "--data-dir", ca_env
    )
    assert revoked.code == 0, revoked.err
    assert revoked.out.strip() == f"revoked {rows[0]['serial']} (keyCompromise)"

    rows = listing(cli, ca_env)
    for row in rows:
        assert set(row) == LISTING_FIELDS
        assert re.fullmatch(r"[0-9A-F]{1,40}", str(row["serial"]))
        for name in ("not_before", "not_after"):
            text = str(row[name])
            assert text.endswith("+08:00"), text
            moment = datetime.fromisoformat(text)
            assert moment.utcoffset() == timedelta(hours=8)
        end = datetime.fromisoformat(str(row["not_after"]))
        assert (end.hour, end.minute, end.second) == (23, 59, 59)
        begin = datetime.fromisoformat(str(row["not_before"]))
        assert abs(datetime.now(UTC) - begin) < timedelta(minutes=5)
    assert (rows[0]["status"], rows[0]["revoked_reason"]) == ("revoked", "keyCompromise")
    assert (rows[1]["status"], rows[1]["revoked_reason"]) == ("valid", None)

    only = listing(cli, ca_env, "--id", second.lower())
    assert [row["serial"] for row in only] == [rows[1]["serial"]]
    assert listing(cli, ca_env, "--id", valid_id("V12345678")) == []

    plain = cli("cert", "list", "--data-dir", ca_env)
    assert plain.code == 0
    assert [line.split()[0] for line in plain.out.splitlines()] == [r["serial"] for r in rows]
    assert "revoked (keyCompromise)" in plain.out


def test_list_masks_id_numbers_unless_unmasked_which_is_audited(
    cli: Cli, ca_env: Path, tmp_path: Path
) -> None:
    first, second = valid_id("T22345678"), valid_id("U22345678")
    assert issue(cli, ca_env, first, tmp_path / "1.pfx").code == 0
    assert issue(cli, ca_env, second, tmp_path / "2.pfx").code == 0
    plain = cli("cert", "list", "--data-dir", ca_env)
    as_json = cli("cert", "list", "--json", "--data-dir", ca_env)
    for result in (plain, as_json):
        assert result.code == 0, result.err
        assert masked(first) in result.out and masked(second) in result.out
        assert first not in result.out and second not in result.out
    assert audit_records(ca_env, "certificates.unmasked") == []

    unmasked = listing(cli, ca_env, "--unmasked")
    assert [row["customer_id"] for row in unmasked] == [first, second]
    only = cli("cert", "list", "--id", second, "--unmasked", "--data-dir", ca_env)
    assert only.code == 0 and second in only.out and first not in only.out
    records = audit_records(ca_env, "certificates.unmasked")
    assert [(r["subject"], json.loads(r["details"])) for r in records] == [
        ("certificates", {"command": "list", "count": 2}),
        (masked(second), {"command": "list", "count": 1}),
    ]
    assert all(r["actor"].startswith("operator:") and r["channel"] == "cli" for r in records)
    verified = cli("audit", "verify", "--data-dir", ca_env)
    assert verified.code == 0, verified.err


def test_revoke_errors(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    assert_error(
        cli("cert", "revoke", "1234ABCD", "--reason", "keyCompromise", "--data-dir", ca_env),
        "no issued certificate with serial 1234ABCD",
    )
    assert_error(
        cli("cert", "revoke", "not-hex", "--reason", "superseded", "--data-dir", ca_env),
        "no issued certificate",
    )
    assert issue(cli, ca_env, valid_id("W12345678"), tmp_path).code == 0
    (row,) = listing(cli, ca_env)
    serial = str(row["serial"])
    # Serial numbers are accepted in lower case too.
    first = cli(
        "cert", "revoke", serial.lower(), "--reason", "cessationOfOperation", "--data-dir", ca_env
    )
    assert first.code == 0, first.err
    assert_error(
        cli("cert", "revoke", serial, "--reason", "keyCompromise", "--data-dir", ca_env),
        "already revoked",
    )
    (row,) = listing(cli, ca_env)
    assert row["revoked_reason"] == "cessationOfOperation"
    # RFC 5280 reasons CertDesk never writes are refused before anything happens.
    for reason in ("unspecified", "removeFromCRL", "bogus"):
        assert_error(
            cli("cert", "revoke", serial, "--reason", reason, "--data-dir", ca_env),
            "invalid choice",
        )
    assert_error(cli("cert", "revoke", serial, "--data-dir", ca_env), "--reason")


def test_renew_outside_the_window_names_it(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    assert issue(cli, ca_env, valid_id("X12345678"), tmp_path).code == 0
    (row,) = listing(cli, ca_env)
    serial = str(row["serial"])
    end = datetime.fromisoformat(str(row["not_after"])).astimezone(TAIPEI)
    start = end - timedelta(days=30)
    renew = ("cert", "renew", serial, "--password", PASSWORD, "--out", tmp_path / "r.pfx")
    line = assert_error(cli(*renew, "--data-dir", ca_env), secrets=(PASSWORD,))
    assert f"{start:%Y-%m-%d %H:%M:%S}" in line and f"{end:%Y-%m-%d %H:%M:%S}" in line, line
    assert not (tmp_path / "r.pfx").exists()

    assert_error(
        cli(
            *f"cert renew ABCDEF --password {PASSWORD} --out".split(),
            tmp_path,
            "--data-dir",
            ca_env,
        ),
        "no issued certificate",
    )
    assert (
        cli("cert", "revoke", serial, "--reason", "keyCompromise", "--data-dir", ca_env).code == 0
    )
    assert_error(cli(*renew, "--data-dir", ca_env), "revoked and cannot be renewed")


def test_renew_inside_the_window(
    cli: Cli, ca_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One month of validity and a 60-day window: a new certificate is renewable at once."""
    monkeypatch.setenv("CERTDESK_VALIDITY_MONTHS", "1")
    monkeypatch.setenv("CERTDESK_RENEWAL_WINDOW_DAYS", "60")
    customer = valid_id("Y12345678")
    assert issue(cli, ca_env, customer, tmp_path / "old.pfx").code == 0
    (old,) = listing(cli, ca_env)
    assert old["status"] == "renewal_due"
    renew = ("cert", "renew", str(old["serial"]), "--data-dir", ca_env, "--password")
    assert_error(cli(*renew, "x", "--out", tmp_path), "4 to 12 letters")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    renew_from_stdin = (*renew[:-1], "--password-stdin", "--out", tmp_path / "new.pfx")
    result = cli(*renew_from_stdin)
    assert result.code == 0, result.err
    _, cert, _ = pkcs12.load_key_and_certificates(
        (tmp_path / "new.pfx").read_bytes(), PASSWORD.encode()
    )
    assert cert is not None
    rows = listing(cli, ca_env, "--id", customer)
    assert [(r["serial"], r["status"], r["revoked_reason"]) for r in rows] == [
        (old["serial"], "revoked", "superseded"),
        (f"{cert.serial_number:X}", "renewal_due", None),
    ]


def test_audit_verify_counts_records(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    assert issue(cli, ca_env, valid_id("Q22345678"), tmp_path).code == 0
    result = cli("audit", "verify", "--data-dir", ca_env)
    assert result.code == 0, result.err
    assert re.fullmatch(r"audit chain intact: \d+ records\n", result.out)
    assert int(result.out.split()[3]) >= 2  # requested, issued


# -- where the data lives ---------------------------------------------------------------------


def test_data_dir_before_or_after_the_command_and_from_the_environment(
    cli: Cli, ca_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert issue(cli, ca_env, valid_id("A22345678"), tmp_path).code == 0
    expected = listing(cli, ca_env)
    assert len(expected) == 1

    before = cli("--data-dir", ca_env, "cert", "list", "--json")
    assert before.code == 0 and json.loads(before.out) == expected
    shown = cli("--data-dir", ca_env, "ca", "show", "--pem")
    assert shown.out == (ca_env / "ca.pem").read_text()

    # Nothing given: ./var in the working directory (here, the test's own).
    default = cli("cert", "list", "--json")
    assert default.code == 0 and json.loads(default.out) == []
    assert (Path.cwd() / "var" / "certdesk.sqlite3").is_file()

    monkeypatch.setenv("CERTDESK_DATA_DIR", str(ca_env))
    from_env = cli("cert", "list", "--json")
    assert from_env.code == 0 and json.loads(from_env.out) == expected
    # An explicit --data-dir wins over the environment.
    explicit = cli("cert", "list", "--json", "--data-dir", Path.cwd() / "var")
    assert json.loads(explicit.out) == []


def test_real_process_uses_environment_and_fails_in_one_line(ca_env: Path, tmp_path: Path) -> None:
    env = {"CERTDESK_DATA_DIR": str(ca_env), "CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode()}
    issue_args = ("cert", "issue", "--password", PASSWORD, "--out", tmp_path, "--id")
    bad = certdesk_process(*issue_args, "A123456788", env=env, cwd=tmp_path)
    assert_error(bad, "--id A123XXX88", secrets=(PASSWORD, "A123456788"))
    assert bad.out == ""

    usage = certdesk_process("cert", "revoke", "ABC", env=env, cwd=tmp_path)
    assert_error(usage, "--reason")

    # --data-dir before the command, in a real process, without CERTDESK_DATA_DIR.
    passphrase_only = {"CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode()}
    good = certdesk_process(
        "--data-dir", ca_env, *issue_args, "A123456789", env=passphrase_only, cwd=tmp_path
    )
    assert good.code == 0, good.err
    assert good.err == ""
    assert list(tmp_path.glob("A123456789-CERTDESK(*).pfx"))


def test_bad_configuration_and_unusable_data_dir_are_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    assert_error(cli("cert", "list", "--data-dir", a_file), str(a_file))
    monkeypatch.setenv("CERTDESK_VALIDITY_MONTHS", "twelve")
    assert_error(cli("cert", "list"), "invalid configuration", "validity_months")


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_serve_refuses_a_port_that_is_not_one(cli: Cli, tmp_path: Path, port: str) -> None:
    result = cli("serve", "--port", port, "--data-dir", tmp_path / "var")
    assert_error(result, "invalid configuration", "port must be between 1 and 65535")


def test_a_number_beyond_the_rules_is_one_line_not_an_overflow(
    cli: Cli, ca_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTDESK_IDENTITY_LOCK_MINUTES", "9" * 30)
    result = issue(cli, ca_env, valid_id("B22345678"), tmp_path)
    assert_error(result, "invalid configuration", "identity_lock_minutes must be between")
    monkeypatch.setenv("CERTDESK_IDENTITY_LOCK_MINUTES", "9" * 5000)
    line = assert_error(issue(cli, ca_env, valid_id("B22345678"), tmp_path), "identity_lock")
    assert len(line) < 300


# -- files are the operator's alone -----------------------------------------------------------


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _with_umask_022() -> None:
    os.umask(0o022)


def test_a_written_pfx_is_the_operators_alone(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    previous = os.umask(0o022)  # what most shells hand a command
    try:
        to_dir = tmp_path / "shared"
        to_dir.mkdir(mode=0o755)
        assert issue(cli, ca_env, valid_id("C22345678"), to_dir).code == 0
        (written,) = to_dir.iterdir()
        assert _mode(written) == 0o600
        existing = tmp_path / "existing.pfx"
        existing.write_bytes(b"an older file")
        existing.chmod(0o644)
        assert issue(cli, ca_env, valid_id("D22345678"), existing).code == 0
        assert _mode(existing) == 0o600
        pkcs12.load_key_and_certificates(existing.read_bytes(), PASSWORD.encode())
        assert os.umask(0o022) == 0o022  # the command gave the caller's umask back
    finally:
        os.umask(previous)


def test_a_data_directory_open_to_others_is_one_warning_line(ca_env: Path, tmp_path: Path) -> None:
    ca_env.chmod(0o755)
    env = {"CERTDESK_DATA_DIR": str(ca_env)}
    listed = certdesk_process("cert", "list", env=env, cwd=tmp_path)
    assert listed.code == 0
    [line] = listed.err.splitlines()
    assert str(ca_env) in line and "mode 755" in line and "chmod 700" in line
    assert _mode(ca_env / "certdesk.sqlite3") == 0o600


def test_the_chat_log_and_database_are_the_operators_alone(ca_env: Path, tmp_path: Path) -> None:
    ca_env.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--data-dir", str(ca_env)],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")},
            "PYTHONPATH": str(REPO),
            "CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode(),
        },
        cwd=tmp_path,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_with_umask_022,  # only sets the umask, before exec
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("console.log", "certdesk.sqlite3", "otp-key"):
        assert _mode(ca_env / name) == 0o600, name
    assert "chmod 700" in (ca_env / "console.log").read_text()  # the warning, in the chat's log


# -- reminders list ----------------------------------------------------------------------------


def test_reminders_list_shows_the_outbox_masked(cli: Cli, ca_env: Path, tmp_path: Path) -> None:
    first, second = valid_id("T12345678"), valid_id("U12345678")
    assert issue(cli, ca_env, first, tmp_path / "1.pfx").code == 0
    assert issue(cli, ca_env, second, tmp_path / "2.pfx").code == 0
    assert cli("reminders", "list", "--json", "--data-dir", ca_env).out.strip() == "[]"
    rows = listing(cli, ca_env)
    not_after = datetime.fromisoformat(str(rows[0]["not_after"]))
    near_the_end = not_after - timedelta(days=10, hours=12)  # 11:59:59 Taipei, no quiet hours

    async def plan_and_skip_one() -> None:
        settings = load_settings(environ={}, data_dir=ca_env)
        db = Database(settings.database)
        try:
            planner = ReminderPlanner(db, settings, lambda: near_the_end)
            assert len(await planner.plan(near_the_end, 100)) == 2
            await planner.mark(str(rows[1]["serial"]), 30, ReminderState.SKIPPED, "unreachable")
        finally:
            await db.close()

    asyncio.run(plan_and_skip_one())

    result = cli("reminders", "list", "--json", "--data-dir", ca_env)
    assert result.code == 0, result.err
    listed = {row["serial"]: row for row in json.loads(result.out)}
    assert set(listed) == {rows[0]["serial"], rows[1]["serial"]}
    pending, skipped = listed[rows[0]["serial"]], listed[rows[1]["serial"]]
    assert pending == {
        "serial": rows[0]["serial"],
        "customer_id": masked(first),
        "milestone_days": 30,
        "planned_at": near_the_end.isoformat(),
        "send_after": near_the_end.isoformat(),
        "state": "pending",
        "reason": None,
        "attempts": 0,
    }
    assert (skipped["customer_id"], skipped["state"]) == (masked(second), "skipped")
    assert (skipped["reason"], skipped["attempts"]) == ("unreachable", 1)

    plain = cli("reminders", "list", "--data-dir", ca_env)
    assert plain.code == 0, plain.err
    assert "skipped (unreachable)" in plain.out and masked(second) in plain.out
    for full in (first, second):
        assert full not in plain.out and full not in result.out


def test_reminders_sweep_at_a_later_time_is_a_dry_run(
    cli: Cli, ca_env: Path, tmp_path: Path
) -> None:
    """`reminders sweep --at` a time to come shows what that time would plan and send, quiet
    hours included, and records nothing."""
    first = valid_id("T12345678")
    assert issue(cli, ca_env, first, tmp_path / "1.pfx").code == 0
    [row] = listing(cli, ca_env)
    not_after = datetime.fromisoformat(str(row["not_after"]))
    night = (not_after - timedelta(days=29)).replace(hour=22, minute=0, second=0)

    result = cli("reminders", "sweep", "--at", night.isoformat(), "--data-dir", ca_env)
    assert result.code == 0, result.err
    assert "dry run" in result.out and "would plan 1" in result.out and "0 due" in result.out
    assert first not in result.out and masked(first) in result.out

    morning = (night + timedelta(hours=11)).replace(tzinfo=None)  # no offset: Taipei
    result = cli("reminders", "sweep", "--at", morning.isoformat(), "--data-dir", ca_env)
    assert result.code == 0, result.err
    assert "would plan 1" in result.out and "1 due to send then" in result.out
    assert cli("reminders", "list", "--json", "--data-dir", ca_env).out.strip() == "[]"

    assert cli("reminders", "sweep", "--at", "yesterday", "--data-dir", ca_env).code == 2


def test_reminders_sweep_now_or_in_the_past_records_as_now(cli: Cli, ca_env: Path) -> None:
    """Without --at, or with a past one, the sweep plans for the present and records it."""
    assert cli("reminders", "sweep", "--data-dir", ca_env).code == 0  # migrates the database

    async def a_certificate_at_its_30_day_milestone() -> None:
        db = Database(load_settings(environ={}, data_dir=ca_env).database)
        try:
            await seed_backlog(db, 1, datetime.now(UTC), channel="web")
        finally:
            await db.close()

    asyncio.run(a_certificate_at_its_30_day_milestone())
    long_ago = "2020-01-01T10:00:00+08:00"
    result = cli("reminders", "sweep", "--at", long_ago, "--data-dir", ca_env)
    assert result.code == 0, result.err
    assert "dry run" not in result.out and "1 planned" in result.out
    assert "2020-01-01" not in result.out  # acted as now
    [listed] = json.loads(cli("reminders", "list", "--json", "--data-dir", ca_env).out)
    assert (listed["milestone_days"], listed["state"]) == (30, "pending")
    assert "0 planned" in cli("reminders", "sweep", "--data-dir", ca_env).out


# -- agents ------------------------------------------------------------------------------

AGENT_PASSWORD = "agent-pass-2026"


def agent_rows(data_dir: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(data_dir / "certdesk.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM agents").fetchall()


def test_agents_add_reads_stdin_and_stores_only_a_hash(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "var"
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{AGENT_PASSWORD}\n"))
    result = cli("agents", "add", "mei", "--password-stdin", "--data-dir", data_dir)
    assert result.code == 0, result
    assert AGENT_PASSWORD not in result.out + result.err
    (row,) = agent_rows(data_dir)
    assert row["name"] == "mei" and AGENT_PASSWORD.encode() not in bytes(row["password_hash"])
    assert [r["subject"] for r in audit_records(data_dir, "agent.added")] == ["agent:mei"]

    async def check() -> tuple[bool, bool]:
        from certcore.clock import system_clock
        from certcore.handoff import AgentAccounts

        db = Database(load_settings(environ={}, data_dir=data_dir).database)
        try:
            accounts = AgentAccounts(db, system_clock)
            return (
                await accounts.verify("mei", AGENT_PASSWORD),
                await accounts.verify("mei", "wrong"),
            )
        finally:
            await db.close()

    assert asyncio.run(check()) == (True, False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{AGENT_PASSWORD}\n"))
    assert_error(
        cli("agents", "add", "mei", "--password-stdin", "--data-dir", data_dir),
        "exists already",
    )


def test_agents_add_prompts_twice(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "var"
    typed = iter([AGENT_PASSWORD, AGENT_PASSWORD + "x"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    assert_error(cli("agents", "add", "mei", "--data-dir", data_dir), "differ")
    assert not (data_dir / "certdesk.sqlite3").exists()  # refused before the database opened
    typed = iter([AGENT_PASSWORD, AGENT_PASSWORD])
    assert cli("agents", "add", "mei", "--data-dir", data_dir).code == 0
    assert [r["name"] for r in agent_rows(data_dir)] == ["mei"]


def test_agents_remove(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "var"
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{AGENT_PASSWORD}\n"))
    assert cli("agents", "add", "mei", "--password-stdin", "--data-dir", data_dir).code == 0
    assert cli("agents", "remove", "mei", "--data-dir", data_dir).code == 0
    assert agent_rows(data_dir) == []
    assert [r["subject"] for r in audit_records(data_dir, "agent.removed")] == ["agent:mei"]
    assert_error(cli("agents", "remove", "mei", "--data-dir", data_dir), "no agent named mei")
