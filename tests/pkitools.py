"""Run the real external PKI tools as judges of CertDesk's artefacts.

CertDesk's certificates, CRLs, OCSP responses and PKCS#12 files are consumed by software we do
not control: OpenSSL (the order system), NSS (Firefox), Windows/macOS key stores. Checking them
with ``cryptography`` alone would only prove that our code agrees with itself, so the tests hand
every artefact to the tools a relying party uses and to pkilint (an RFC 5280/6960 linter).

Every helper

* runs its tool with ``subprocess.run(check=False, timeout=...)`` and judges the exit status and
  the output itself, so that a tool that crashes, hangs or prints something unexpected fails the
  test instead of being silently accepted;
* raises ``AssertionError`` carrying the command line and the tool's complete stdout and stderr,
  so a pytest failure shows what the tool said and needs no re-run to diagnose;
* works only in directories the caller passes in (pytest's ``tmp_path``), never in the cwd.

OpenSSL 3.0 quirks handled here (found by running the tools, see ``tests/test_pkitools.py``):

* ``openssl verify -CRLfile`` accepts a DER CRL as well as PEM (the help text says PEM only).
* ``openssl verify`` reports a revoked certificate as ``error 23 ... certificate revoked``; it
  never prints the revocation reason, which has to be read from ``openssl crl -text``.
* ``openssl crl -CAfile ... -noout`` prints ``verify OK`` on **stderr**; ``openssl pkcs12 -info
  -noout`` prints its algorithm lines on **stderr** too; ``openssl ocsp`` prints ``Response verify
  OK`` on stderr and the per-certificate status on stdout.
* ``openssl pkcs12`` reads 3DES (pbeWithSHA1And3-KeyTripleDES-CBC) files without ``-legacy``;
  only RC2 (e.g. pbeWithSHA1And40BitRC2-CBC, the old OpenSSL/Windows default for the certificate
  bag) needs ``-legacy`` and otherwise fails with ``unsupported ... RC2-40-CBC``.
* ``openssl ocsp``: ``-sha256`` must come **before** ``-cert`` (otherwise "Digest must be before
  -cert or -serial"); ``-no_nonce`` is needed against pre-signed responses (otherwise "WARNING: no
  nonce in response"); when the response is signed by the ``-issuer`` certificate itself, OpenSSL
  falls back to trusting that certificate, so ``-CAfile`` does not change the verdict there.
* ``openssl ocsp -url`` honours ``http_proxy``; the proxy variables are removed from its
  environment so a loopback responder is always reached directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

#: Seconds any single tool invocation may take. 600,000-round PKCS#12 files take about a
#: second to open; anything near this limit is a hang, not a slow machine.
TOOL_TIMEOUT = 60.0

#: ``cryptography``'s CRL reason names (``x509.ReasonFlags.value``) -> ``openssl crl -text`` text.
OPENSSL_CRL_REASON_TEXT: dict[str, str] = {
    "unspecified": "Unspecified",
    "keyCompromise": "Key Compromise",
    "cACompromise": "CA Compromise",
    "affiliationChanged": "Affiliation Changed",
    "superseded": "Superseded",
    "cessationOfOperation": "Cessation Of Operation",
    "certificateHold": "Certificate Hold",
    "removeFromCRL": "Remove From CRL",
    "privilegeWithdrawn": "Privilege Withdrawn",
    "aACompromise": "AA Compromise",
}

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


# --------------------------------------------------------------------------------------------
# plumbing


def _run(
    args: Sequence[str | os.PathLike[str]],
    *,
    secrets: Sequence[str] = (),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = TOOL_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run one tool, capturing text output; a timeout becomes an ``AssertionError``.

    ``secrets`` are masked in any message we build, so a failing test never prints a password.
    """
    argv = [os.fspath(a) for a in args]
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=timeout,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{_mask(' '.join(argv), secrets)!s} timed out after {timeout} s\n"
            f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}"
        ) from None
    except FileNotFoundError as exc:
        raise AssertionError(f"tool not installed: {argv[0]} ({exc})") from None


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _fail(
    why: str, proc: subprocess.CompletedProcess[str], secrets: Sequence[str] = ()
) -> AssertionError:
    """Build the readable failure: why, command, exit status, full stdout and stderr."""
    return AssertionError(
        _mask(
            f"{why}\n$ {' '.join(map(str, proc.args))}\nexit status: {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            secrets,
        )
    )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    """OpenSSL splits its verdicts between stdout and stderr; most checks need both."""
    return proc.stdout + proc.stderr


def _no_proxy_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost,::1"
    return env


def write_pem(obj: x509.Certificate | x509.CertificateRevocationList, path: Path) -> Path:
    """Write a certificate or CRL as PEM (what ``openssl`` and ``certutil -a`` read) at path."""
    path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    return path


def write_der(obj: x509.Certificate | x509.CertificateRevocationList, path: Path) -> Path:
    """Write a certificate or CRL as DER (what CertDesk publishes and relying parties fetch)."""
    path.write_bytes(obj.public_bytes(serialization.Encoding.DER))
    return path


# --------------------------------------------------------------------------------------------
# OpenSSL: chain verification and CRLs


def openssl_verify(
    cert_pem: Path,
    ca_pem: Path,
    *,
    purpose: str | None = "sslclient",
    crl_pem: Path | None = None,
    at_time: datetime | None = None,
    expect_error: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` the certificate against the CA alone, as the order system would.

    ``-purpose sslclient`` makes OpenSSL check EKU clientAuth, KeyUsage digitalSignature and the
    CA's BasicConstraints. With ``crl_pem`` (PEM or DER; OpenSSL 3 detects either) ``-crl_check``
    is added, so a missing, expired or badly signed CRL fails too. ``at_time`` sets ``-attime``.

    By default the certificate must verify (``<file>: OK``). With ``expect_error`` the
    verification must FAIL and the output must contain that text, e.g. ``"certificate revoked"``
    or ``"certificate has expired"``; a certificate that unexpectedly passes is an error.
    """
    args: list[str | os.PathLike[str]] = [
        "openssl",
        "verify",
        "-CAfile",
        ca_pem,
        "-no-CApath",
        "-no-CAstore",
    ]
    if purpose is not None:
        args += ["-purpose", purpose]
    if crl_pem is not None:
        args += ["-CRLfile", crl_pem, "-crl_check"]
    if at_time is not None:
        args += ["-attime", str(int(at_time.timestamp()))]
    args.append(cert_pem)
    proc = _run(args)
    if expect_error is None:
        if proc.returncode != 0 or f"{cert_pem}: OK" not in proc.stdout:
            raise _fail("openssl verify rejected the certificate", proc)
    elif proc.returncode == 0 or expect_error not in _output(proc):
        raise _fail(f"openssl verify was expected to fail with {expect_error!r}", proc)
    return proc


def openssl_verify_revoked(
    cert_pem: Path,
    ca_pem: Path,
    crl: Path,
    *,
    reason: x509.ReasonFlags | str | None = None,
    purpose: str | None = "sslclient",
) -> subprocess.CompletedProcess[str]:
    """Assert that ``openssl verify -crl_check`` rejects the certificate as revoked.

    OpenSSL's verdict ("error 23 ... certificate revoked") carries no reason, so when ``reason``
    is given (a ``ReasonFlags``, its RFC 5280 name such as ``"keyCompromise"``, or OpenSSL's own
    text such as ``"Key Compromise"``) the CRL is also read with ``openssl crl -text`` and the
    certificate's entry must carry that reason.
    """
    proc = openssl_verify(
        cert_pem, ca_pem, purpose=purpose, crl_pem=crl, expect_error="certificate revoked"
    )
    if reason is not None:
        serial = x509.load_pem_x509_certificate(cert_pem.read_bytes()).serial_number
        want = reason.value if isinstance(reason, x509.ReasonFlags) else reason
        want = OPENSSL_CRL_REASON_TEXT.get(want, want)
        text = openssl_crl_text(crl, ca_pem)
        entries = crl_revoked_entries(text)
        if entries.get(serial) != want:
            raise AssertionError(
                f"CRL entry for serial {serial:X} has reason {entries.get(serial)!r}, "
                f"expected {want!r}\n--- openssl crl -text ---\n{text}"
            )
    return proc


def openssl_crl_text(crl_der: Path, ca_pem: Path) -> str:
    """``openssl crl -CAfile ca -noout -text``: the CRL must parse and its signature verify.

    Accepts DER (what CertDesk publishes) and, by sniffing, PEM. Returns stdout and stderr
    together (the text, then OpenSSL's ``verify OK``).
    """
    inform = "PEM" if crl_der.read_bytes().lstrip().startswith(b"-----BEGIN") else "DER"
    proc = _run(
        ["openssl", "crl", "-inform", inform, "-in", crl_der, "-CAfile", ca_pem, "-noout", "-text"]
    )
    if proc.returncode != 0 or "verify OK" not in proc.stderr:
        raise _fail("openssl crl did not verify the CRL", proc)
    return _output(proc)


_CRL_SERIAL = re.compile(r"^\s*Serial Number:\s*([0-9A-Fa-f]+)\s*$")
_CRL_REASON_HEAD = re.compile(r"^\s*X509v3 CRL Reason Code:\s*$")


def crl_revoked_entries(crl_text: str) -> dict[int, str | None]:
    """Parse ``openssl crl -text`` into {serial: reason text or None}, reading OpenSSL's view."""
    entries: dict[int, str | None] = {}
    serial: int | None = None
    lines = crl_text.splitlines()
    for i, line in enumerate(lines):
        if m := _CRL_SERIAL.match(line):
            serial = int(m.group(1), 16)
            entries[serial] = None
        elif serial is not None and _CRL_REASON_HEAD.match(line) and i + 1 < len(lines):
            entries[serial] = lines[i + 1].strip()
        elif line.lstrip().startswith("Signature Algorithm") and not line.startswith("        "):
            serial = None
    return entries


# --------------------------------------------------------------------------------------------
# PKCS#12


def openssl_pkcs12_info(p12: Path, password: str) -> str:
    """``openssl pkcs12 -info -nokeys -noout``: the MAC must verify with password.

    Returns the lines naming the MAC and the encryption of every bag (OpenSSL prints them on
    stderr), e.g. ``MAC: sha256, Iteration 2048`` and ``Shrouded Keybag: PBES2, PBKDF2,
    AES-256-CBC, Iteration 600000, PRF hmacWithSHA256``. Files OpenSSL 3 only reads with its
    legacy provider (RC2; 3DES does NOT need it) are retried with ``-legacy`` and the output is
    then prefixed with ``(read with -legacy)``, so a test can tell.
    """
    env = dict(os.environ, CERTDESK_P12_PASS=password)
    base = [
        "openssl",
        "pkcs12",
        "-info",
        "-nokeys",
        "-noout",
        "-in",
        str(p12),
        "-passin",
        "env:CERTDESK_P12_PASS",
    ]
    proc = _run(base, env=env, secrets=[password])
    prefix = ""
    if proc.returncode != 0 and "unsupported" in proc.stderr:
        proc = _run([*base, "-legacy"], env=env, secrets=[password])
        prefix = "(read with -legacy)\n"
    if proc.returncode != 0 or "MAC: " not in _output(proc):
        raise _fail("openssl pkcs12 could not read the file", proc, [password])
    if "verify error" in _output(proc).lower():
        raise _fail("openssl pkcs12 reported a MAC verify error", proc, [password])
    return prefix + _output(proc)


@dataclass(frozen=True)
class Pkcs12Info:
    """What ``openssl pkcs12 -info`` says about a file's protection."""

    mac_hash: str
    mac_iterations: int
    #: one entry per encrypted part: ``("PKCS7 Encrypted data" | "Shrouded Keybag", algorithm)``
    encryptions: tuple[tuple[str, str], ...]
    certificate_bags: int


def parse_pkcs12_info(info: str) -> Pkcs12Info:
    """Parse ``openssl_pkcs12_info`` output, so tests can assert iteration counts numerically."""
    mac = re.search(r"^MAC: (\S+), Iteration (\d+)", info, re.M)
    if mac is None:
        raise AssertionError(f"no MAC line in openssl pkcs12 output:\n{info}")
    encs = tuple(
        (m.group(1), m.group(2).strip())
        for m in re.finditer(r"^(PKCS7 Encrypted data|Shrouded Keybag): (.*)$", info, re.M)
    )
    return Pkcs12Info(
        mac_hash=mac.group(1),
        mac_iterations=int(mac.group(2)),
        encryptions=encs,
        certificate_bags=len(re.findall(r"^Certificate bag$", info, re.M)),
    )


# --------------------------------------------------------------------------------------------
# NSS (Firefox's and Chrome-on-Linux's certificate library)

_CERTUTIL_LINE = re.compile(r"^(?P<nick>\S.*?)\s+(?P<trust>[A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")


def nss_list_certs(db: Path) -> dict[str, str]:
    """``certutil -L``: {nickname: trust flags}; ``u`` in the flags marks a cert with a key."""
    proc = _run(["certutil", "-L", "-d", f"sql:{db}"])
    if proc.returncode != 0:
        raise _fail("certutil -L failed", proc)
    certs: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        m = _CERTUTIL_LINE.match(line)
        if m and m.group("nick") != "Certificate Nickname":
            certs[m.group("nick")] = m.group("trust")
    return certs


def nss_import_and_validate(
    p12: Path,
    password: str,
    workdir: Path,
    *,
    ca_pem: Path,
    usage: str = "C",
    require_chain: bool = True,
) -> str:
    """Import the PKCS#12 into a fresh NSS database and have NSS validate the client cert.

    Steps: ``certutil -N --empty-password``; ``pk12util -i`` (the file's MAC and encryption must
    be readable by NSS); with ``require_chain`` the file must have brought a second (CA)
    certificate; ``certutil -A -t CT,C,C`` trusts the CA from ``ca_pem`` (the anchor comes from
    the caller, never from the file under test; if the file carried the same CA, NSS keeps that
    entry and only sets its trust); ``certutil -V -e -u C`` must say "certificate is valid"
    (signature, chain and SSL-client usage).

    ``workdir/nssdb`` is created and must not exist yet (one database per call). Returns the
    nickname NSS gave the key+certificate: pk12util uses the PKCS#12 friendlyName
    (a CA certificate without friendlyName gets NSS's "<CN> - <O>" nickname).
    """
    db = workdir / "nssdb"
    db.mkdir(parents=True, exist_ok=False)
    dbarg = f"sql:{db}"
    proc = _run(["certutil", "-N", "--empty-password", "-d", dbarg])
    if proc.returncode != 0:
        raise _fail("certutil -N failed", proc)
    proc = _run(["pk12util", "-i", p12, "-d", dbarg, "-W", password], secrets=[password])
    if proc.returncode != 0 or "PKCS12 IMPORT SUCCESSFUL" not in _output(proc):
        raise _fail("pk12util could not import the PKCS#12 file", proc, [password])
    certs = nss_list_certs(db)
    users = [nick for nick, trust in certs.items() if "u" in trust]
    if len(users) != 1:
        raise AssertionError(f"expected one certificate with a key after pk12util, got {certs}")
    if require_chain and len(certs) < 2:
        raise AssertionError(f"the PKCS#12 file carried no CA certificate: NSS holds {certs}")
    proc = _run(
        [
            "certutil",
            "-A",
            "-n",
            "CertDesk test anchor",
            "-t",
            "CT,C,C",
            "-a",
            "-i",
            ca_pem,
            "-d",
            dbarg,
        ]
    )
    if proc.returncode != 0:
        raise _fail("certutil -A could not add the CA as trusted", proc)
    nick = users[0]
    proc = _run(["certutil", "-V", "-e", "-u", usage, "-n", nick, "-d", dbarg])
    if proc.returncode != 0 or "certificate is valid" not in _output(proc):
        raise _fail(f"NSS does not consider {nick!r} valid for usage {usage}", proc)
    return nick


# --------------------------------------------------------------------------------------------
# pkilint


def _pkilint_script(name: str) -> Path:
    """pkilint's console script from the running interpreter's environment (not some other)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} not found next to {sys.executable}: pip install pkilint")
    return Path(found)


def _pkilint(name: str, options: Sequence[str], files: Sequence[Path]) -> list[str]:
    """Run ``<name> lint <options> -f JSON <files>`` and return one line per finding.

    pkilint's exit status is the number of findings at or above the threshold (capped at 255),
    and 1 with "Failed to load" on stderr when it cannot even parse the input: the count is
    cross-checked against the JSON so a load failure is never mistaken for one finding.
    """
    proc = _run([_pkilint_script(name), "lint", *options, "-f", "JSON", *files])
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise _fail(f"{name} produced no JSON report", proc) from None
    findings = [
        f"{d['severity']} {d['code']} @ {r['node_path']} [{r['validator']}]"
        + (f": {d['message']}" if d.get("message") else "")
        for r in report["results"]
        for d in r["finding_descriptions"]
    ]
    if proc.returncode != min(len(findings), 255):
        raise _fail(f"{name} exit status does not match its {len(findings)} findings", proc)
    return findings


def pkilint_cert(cert_pem_or_der: Path, *, severity: str = "WARNING") -> list[str]:
    """``lint_pkix_cert lint -s WARNING``: RFC 5280 certificate findings; [] means clean."""
    return _pkilint("lint_pkix_cert", ["-s", severity], [cert_pem_or_der])


def pkilint_chain(issuer: Path, subject: Path, *, severity: str = "WARNING") -> list[str]:
    """``lint_pkix_signer_signee_cert_chain lint``: name/AKI-SKI linkage and the signature."""
    return _pkilint("lint_pkix_signer_signee_cert_chain", ["-s", severity], [issuer, subject])


def pkilint_crl(
    crl_der: Path, *, severity: str = "WARNING", crl_type: str = "CRL", profile: str = "PKIX"
) -> list[str]:
    """``lint_crl lint -t CRL -p PKIX -s WARNING``: an end-entity CRL (not an ARL) per RFC 5280.

    ``profile="BR"`` applies the CA/Browser Forum TLS rules instead; not CertDesk's world.
    """
    return _pkilint("lint_crl", ["-t", crl_type, "-p", profile, "-s", severity], [crl_der])


def pkilint_ocsp_response(resp_der: Path, *, severity: str = "WARNING") -> list[str]:
    """``lint_ocsp_response lint -s WARNING``: RFC 6960 response findings; [] means clean."""
    return _pkilint("lint_ocsp_response", ["-s", severity], [resp_der])


# --------------------------------------------------------------------------------------------
# OCSP

_OCSP_STATUS = re.compile(r": (good|revoked|unknown)\s*$", re.M)


def _openssl_ocsp(
    source: list[str | os.PathLike[str]], cert_pem: Path, ca_pem: Path, sha256: bool
) -> tuple[str, str]:
    # -sha256 must precede -cert: OpenSSL builds the CertID when it parses -cert.
    args: list[str | os.PathLike[str]] = ["openssl", "ocsp", "-issuer", ca_pem]
    if sha256:
        args.append("-sha256")
    args += ["-cert", cert_pem, *source, "-CAfile", ca_pem, "-no_nonce"]
    proc = _run(args, env=_no_proxy_env())
    out = _output(proc)
    if proc.returncode != 0 or "Response verify OK" not in proc.stderr:
        raise _fail("openssl ocsp did not get a verified response", proc)
    m = _OCSP_STATUS.search(proc.stdout)
    if m is None:
        raise _fail("openssl ocsp printed no status for the certificate", proc)
    return m.group(1), out


def openssl_ocsp_query(
    url: str, cert_pem: Path, ca_pem: Path, *, sha256: bool = False
) -> tuple[str, str]:
    """Ask a live responder with ``openssl ocsp -url`` (an RFC 6960 POST), as the order system.

    The response must verify against the CA (``Response verify OK``) and answer for the exact
    CertID asked (SHA-1 by default, SHA-256 with ``sha256``; a response for the other hash gives
    "No Status found" and fails). Returns (``good``/``revoked``/``unknown``, full output).
    """
    return _openssl_ocsp(["-url", url, "-timeout", "10"], cert_pem, ca_pem, sha256)


def openssl_ocsp_respin(
    resp_der: Path, cert_pem: Path, ca_pem: Path, *, sha256: bool = False
) -> tuple[str, str]:
    """The same judgement on a response file (``-respin``), for pre-signed/cached responses."""
    return _openssl_ocsp(["-respin", resp_der], cert_pem, ca_pem, sha256)
