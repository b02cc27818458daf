"""A real `certdesk serve` process, asked by the tools a relying party uses.

The server runs as a subprocess over a data directory holding the session's CA; certificates
are issued into the same directory before it starts, and a revocation is made by a separate
`certdesk cert revoke` process while it runs, as an operator would. The OCSP answer has to
follow that revocation within seconds (the server watches the CRL number every second).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

import bot.jobs
from certcore.audit import Actor
from certcore.config import load_settings
from certcore.core import Core
from certcore.identity import personal_id_check_digit
from certcore.pki import CAFiles, CertificateRecord, OcspResponder, RevocationReason, random_serial
from certcore.pki.records import all_certificates
from tests import pkitools
from tests.conftest import TEST_PASSPHRASE

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Serve2026"
STARTUP_SECONDS = 30.0
REVOCATION_VISIBLE_SECONDS = 5.0
HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}

# urllib would honour http_proxy; the server is on loopback.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Server:
    url: str
    data_dir: Path
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    ca: x509.Certificate
    ca_pem: Path
    certs: dict[str, x509.Certificate]
    cert_pem: dict[str, Path]


def _certdesk(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", *args]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["CERTDESK_CA_PASSPHRASE"] = TEST_PASSPHRASE.decode()
    env.update(extra)
    return env


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with _http.open(url, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


def _post_ocsp(url: str, request_der: bytes) -> ocsp.OCSPResponse:
    request = urllib.request.Request(
        url, data=request_der, headers={"Content-Type": "application/ocsp-request"}
    )
    with _http.open(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(response.read())


def _ocsp_request(
    cert: x509.Certificate, issuer: x509.Certificate, algorithm: str, nonce: bytes | None = None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, HASHES[algorithm]())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _ocsp_url(cert: x509.Certificate) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls: list[str] = [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
    ]
    (url,) = urls
    return url


async def _issue(data_dir: Path, public_url: str) -> dict[str, x509.Certificate]:
    settings = load_settings(environ={"CERTDESK_PUBLIC_URL": public_url}, data_dir=data_dir)
    core = await Core.open(
        settings,
        rng=random.Random(5019),
        environ={"CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode()},
    )
    try:
        certs = {}
        for kind, prefix in (("good", "D12345678"), ("to_revoke", "E22345678")):
            issued = await core.certificates.issue(
                prefix + personal_id_check_digit(prefix),
                PASSWORD,
                actor=Actor("operator:serve-test", "cli"),
            )
            certs[kind] = issued.record.certificate
        return certs
    finally:
        await core.close()


def _not_issued_by_us(data_dir: Path) -> x509.Certificate:
    """Signed with the CA's own key, under its name, with a serial no record holds."""
    ca = CAFiles(data_dir).load(TEST_PASSPHRASE)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "never recorded")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(random_serial(random.SystemRandom()))
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"certdesk serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            status, _, body = _get(url + "/healthz")
            if status == 200 and json.loads(body)["status"] == "ok":
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"certdesk serve not healthy after {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, _ca_template: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    data_dir = root / "var"
    shutil.copytree(_ca_template, data_dir)
    workdir = root / "out"
    workdir.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    certs = asyncio.run(_issue(data_dir, url))
    certs["unknown"] = _not_issued_by_us(data_dir)
    cert_pem = {kind: pkitools.write_pem(c, workdir / f"{kind}.pem") for kind, c in certs.items()}
    ca = CAFiles(data_dir).load_certificate()
    ca_pem = pkitools.write_pem(ca, workdir / "ca.pem")

    env = _environment(CERTDESK_PUBLIC_URL=url)
    log = root / "serve.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            _certdesk("serve", "--data-dir", str(data_dir), "--port", str(port)),
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, url, log)
        yield Server(
            url=url,
            data_dir=data_dir,
            workdir=workdir,
            env=env,
            process=process,
            log=log,
            ca=ca,
            ca_pem=ca_pem,
            certs=certs,
            cert_pem=cert_pem,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_ca_certificate_and_crl_endpoints(server: Server) -> None:
    status, content_type, body = _get(server.url + "/ca.pem")
    assert (status, content_type) == (200, "application/x-pem-file")
    assert body == (server.data_dir / "ca.pem").read_bytes()

    status, content_type, body = _get(server.url + "/ca.cer")
    assert (status, content_type) == (200, "application/pkix-cert")
    assert x509.load_der_x509_certificate(body) == server.ca

    status, content_type, body = _get(server.url + "/crl")
    assert (status, content_type) == (200, "application/pkix-crl")
    crl = x509.load_der_x509_crl(body)
    assert crl.is_signature_valid(server.ca.public_key())  # type: ignore[arg-type]
    path = server.workdir / "served.crl"
    path.write_bytes(body)
    pkitools.openssl_crl_text(path, server.ca_pem)
    # The URLs written into the certificates point at this server.
    assert _ocsp_url(server.certs["good"]) == server.url + "/ocsp"


@pytest.mark.parametrize("algorithm", sorted(HASHES))
def test_openssl_ocsp_good(server: Server, algorithm: str) -> None:
    status, _ = pkitools.openssl_ocsp_query(
        _ocsp_url(server.certs["good"]),
        server.cert_pem["good"],
        server.ca_pem,
        sha256=algorithm == "sha256",
    )
    assert status == "good"


@pytest.mark.parametrize("algorithm", sorted(HASHES))
def test_openssl_ocsp_unknown_for_a_serial_never_issued(server: Server, algorithm: str) -> None:
    status, _ = pkitools.openssl_ocsp_query(
        server.url + "/ocsp",
        server.cert_pem["unknown"],
        server.ca_pem,
        sha256=algorithm == "sha256",
    )
    assert status == "unknown"


def _nonce_with_awkward_base64(cert: x509.Certificate, issuer: x509.Certificate, alg: str) -> bytes:
    """A request whose base64 holds both '+' and '/', the characters GET must survive."""
    for counter in range(10_000):
        der = _ocsp_request(cert, issuer, alg, nonce=counter.to_bytes(16, "big"))
        text = base64.b64encode(der).decode()
        if "+" in text and "/" in text:
            return der
    raise AssertionError("no request with '+' and '/' in its base64")


@pytest.mark.parametrize("algorithm", sorted(HASHES))
@pytest.mark.parametrize(
    ("kind", "expected"),
    [("good", ocsp.OCSPCertStatus.GOOD), ("unknown", ocsp.OCSPCertStatus.UNKNOWN)],
)
def test_ocsp_get_rfc5019_answers_like_post(
    server: Server, kind: str, expected: ocsp.OCSPCertStatus, algorithm: str
) -> None:
    cert = server.certs[kind]
    der = _nonce_with_awkward_base64(cert, server.ca, algorithm)
    text = base64.b64encode(der).decode()
    responses = [_post_ocsp(server.url + "/ocsp", der)]
    # RFC 5019 asks clients to URL-encode; some send the base64 as it is.
    for path in (urllib.parse.quote(text, safe=""), text):
        status, content_type, body = _get(f"{server.url}/ocsp/{path}")
        assert (status, content_type) == (200, "application/ocsp-response")
        responses.append(ocsp.load_der_ocsp_response(body))
    for response in responses:
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.certificate_status is expected
        assert response.serial_number == cert.serial_number
        assert isinstance(response.hash_algorithm, HASHES[algorithm])


def test_ocsp_get_garbage_is_malformed(server: Server) -> None:
    for suffix in ("bm90IGFuIE9DU1AgcmVxdWVzdA%3D%3D", "%25%25%25", "AAAA"):
        status, _, body = _get(f"{server.url}/ocsp/{suffix}")
        assert status == 200
        response = ocsp.load_der_ocsp_response(body)
        assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_revocation_by_another_process_reaches_ocsp_and_crl(server: Server) -> None:
    cert, pem = server.certs["to_revoke"], server.cert_pem["to_revoke"]
    for algorithm in HASHES:
        status, _ = pkitools.openssl_ocsp_query(
            server.url + "/ocsp", pem, server.ca_pem, sha256=algorithm == "sha256"
        )
        assert status == "good"

    serial = f"{cert.serial_number:X}"
    revoke = subprocess.run(
        _certdesk(
            "cert",
            "revoke",
            serial,
            "--reason",
            "keyCompromise",
            "--data-dir",
            str(server.data_dir),
        ),
        env=server.env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert revoke.returncode == 0, revoke.stderr
    assert revoke.stdout.strip() == f"revoked {serial} (keyCompromise)"
    revoked_at = time.monotonic()

    request = _ocsp_request(cert, server.ca, "sha1")
    while True:
        response = _post_ocsp(server.url + "/ocsp", request)
        if response.certificate_status is ocsp.OCSPCertStatus.REVOKED:
            break
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert time.monotonic() - revoked_at < REVOCATION_VISIBLE_SECONDS, (
            "the server still answers good for a revoked certificate"
        )
        time.sleep(0.2)
    assert response.revocation_reason is x509.ReasonFlags.key_compromise

    for algorithm in HASHES:
        status, output = pkitools.openssl_ocsp_query(
            server.url + "/ocsp", pem, server.ca_pem, sha256=algorithm == "sha256"
        )
        assert status == "revoked"
        assert "Reason: keyCompromise" in output
        assert "Revocation Time:" in output

    http_status, _, body = _get(server.url + "/crl")
    assert http_status == 200
    crl_path = server.workdir / "after-revocation.crl"
    crl_path.write_bytes(body)
    pkitools.openssl_verify_revoked(pem, server.ca_pem, crl_path, reason="keyCompromise")
    pkitools.openssl_verify(server.cert_pem["good"], server.ca_pem, crl_pem=crl_path)
    # The other certificate is untouched.
    status, _ = pkitools.openssl_ocsp_query(
        server.url + "/ocsp", server.cert_pem["good"], server.ca_pem
    )
    assert status == "good"


def test_second_server_on_the_same_port_fails_with_one_line(server: Server) -> None:
    port = urllib.parse.urlsplit(server.url).port
    proc = subprocess.run(
        _certdesk("serve", "--data-dir", str(server.data_dir), "--port", str(port)),
        env=server.env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("certdesk: error: ")
    assert "address already in use" in last


async def test_prewarm_stops_when_another_process_revokes(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up pre-signing reads every record once, then signs for minutes on a large CA.

    A revocation made meanwhile by another process must not be answered "good" from that
    early read: once the watcher has seen the new CRL, the rest is signed on demand.
    """
    operator = Actor("operator:serve-test", "cli")
    for prefix in ("F12345678", "F22345678"):
        await core.certificates.issue(
            prefix + personal_id_check_digit(prefix), PASSWORD, actor=operator
        )
    responder = OcspResponder(
        core.ca,
        core.ocsp.lookup,
        core.clock,
        validity=timedelta(hours=core.settings.ocsp_validity_hours),
        refresh_margin=timedelta(hours=core.settings.ocsp_refresh_margin_hours),
    )
    responder.observe_crl_number(1)
    core.ocsp = responder  # the server's responder, with an empty cache as at start-up
    core.certificates.ocsp = None  # revocations below happen "in another process"
    batches: list[list[CertificateRecord]] = []
    presign = responder.prewarm

    async def prewarm(records: list[CertificateRecord]) -> None:
        batches.append(records)
        await presign(records)
        if len(batches) == 1:  # between two batches: revoked elsewhere, seen by the watcher
            (later,) = [r for r in all_records if r.serial != records[0].serial]
            await core.certificates.revoke(
                later.serial, RevocationReason.KEY_COMPROMISE, actor=operator, online=False
            )
            responder.observe_crl_number(2)
            revoked.append(later)

    async with core.db.read() as conn:
        all_records = await all_certificates(conn)
    revoked: list[CertificateRecord] = []
    monkeypatch.setattr(responder, "prewarm", prewarm)
    monkeypatch.setattr(bot.jobs, "PREWARM_BATCH", 1)
    await bot.jobs.prewarm_ocsp(core)

    (later,) = revoked
    request = _ocsp_request(later.certificate, core.ca.certificate, "sha1")
    answer = ocsp.load_der_ocsp_response(await responder.respond(request))
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_logs_are_json_lines_and_sigterm_stops_within_the_bound(
    tmp_path: Path, _ca_template: Path
) -> None:
    """`serve` logs one JSON object a line, each request's lines under its id; on SIGTERM it
    reports itself not ready, stops and exits 0 well within `shutdown_seconds`."""
    data_dir = tmp_path / "var"
    shutil.copytree(_ca_template, data_dir)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _environment(CERTDESK_PUBLIC_URL=url, CERTDESK_SHUTDOWN_SECONDS="10")
    log = tmp_path / "serve.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            _certdesk("serve", "--data-dir", str(data_dir), "--port", str(port)),
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        _wait_healthy(process, url, log)
        request = urllib.request.Request(url + "/readyz", headers={"X-Request-Id": "probe-0001"})
        with _http.open(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["X-Request-Id"] == "probe-0001"
        status, content_type, body = _get(url + "/metrics")
        assert status == 200 and content_type == "text/plain"
        assert b"certdesk_events_total" in body and b"process_cpu_seconds_total" in body
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    messages = [line["message"] for line in lines]
    assert any(m.startswith("CertDesk stopping") for m in messages)
