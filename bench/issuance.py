"""Issuance and OCSP benchmark: certcore against its floor, and against OpenSSL's responder.

One run prints the machine, then

1. issuance: the floor (a bare `cryptography` loop: RSA-2048 key generation, the DESIGN §4
   profile signed by the CA, standard PKCS#12 export) against full certcore issuance through
   `CertificateService.issue` (SQLite database, audit trail, PKCS#12), sequentially and with two
   concurrent issuers;
2. OCSP: responses per second from a real `certdesk serve` subprocess against OpenSSL's own
   responder (`openssl ocsp -index … -port`), same request, same (Python) load generator,
   plus certdesk under wrk when wrk is installed (see the comment above `LOAD_PROCESSES`);

then the same tables in Markdown, for the README's performance section.

    .venv/bin/python bench/issuance.py [--quick] [--n N] [--duration SECONDS]

Everything happens in a temporary directory that is removed at the end; all traffic goes to
127.0.0.1 (certdesk listens there; OpenSSL's `-port` cannot choose an address, see
`OpenSSLResponder`), every load loop stops by itself and every server is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

import cryptography
from cryptography import x509
from cryptography.hazmat.backends.openssl import backend as openssl_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from certcore.audit import Actor
from certcore.config import Settings, load_settings
from certcore.core import PASSPHRASE_VARIABLE, Core
from certcore.identity import classify_id, personal_id_check_digit
from certcore.pki import (
    CertificateAuthority,
    IssuedCertificate,
    KeyWork,
    pfx_filename,
    process_pool,
    random_serial,
    serial_hex,
    validity_period,
)

ISSUE_P95_TARGET_MS = 300.0
THROUGHPUT_RATIO_TARGET = 0.7
OCSP_RATIO_TARGET = 5.0

PKCS12_ROUNDS = 600_000
PASSWORD = "Bench2026"
ACTOR = Actor(name="bench", channel="bench")
LOAD_TIMEOUT_SECONDS = 5.0
STARTUP_TIMEOUT_SECONDS = 60.0
HOST = "127.0.0.1"


# -- measurements ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


@dataclass
class Series:
    """Latencies (seconds) of one issuance run and the wall time it took."""

    name: str
    latencies: list[float]
    wall: float
    loop_stall_max: float | None = None
    phases: dict[str, list[float]] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.wall

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    @property
    def mean_ms(self) -> float:
        return mean(self.latencies) * 1000


class LoopMonitor:
    """How late the event loop wakes a 5 ms sleeper: the longest time it could not run."""

    INTERVAL = 0.005

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.INTERVAL
            await asyncio.sleep(self.INTERVAL)
            self.lags.append(max(0.0, loop.time() - due))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return max(self.lags, default=0.0)


# -- issuance ----------------------------------------------------------------------------------


def customer_ids(start: int, count: int) -> list[str]:
    """Distinct national IDs with valid check digits, e.g. B100000017."""
    ids = []
    for number in range(start, start + count):
        letter = "ABCDEFGHJKLMNPQRSTUVXYWZIO"[number % 26]
        prefix = f"{letter}{1 + number % 2}{number % 10_000_000:07d}"
        customer_id = prefix + personal_id_check_digit(prefix)
        assert classify_id(customer_id) is not None, customer_id
        ids.append(customer_id)
    assert len(set(ids)) == len(ids)
    return ids


def raw_issue(
    ca: CertificateAuthority, settings: Settings, customer_id: str, rng: Any
) -> tuple[bytes, dict[str, float]]:
    """The floor: what any issuer must do, with nothing around it (no database, no audit)."""
    started = time.perf_counter()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    generated = time.perf_counter()
    validity = validity_period(datetime.now(UTC), settings.validity_months)
    certificate = ca.sign_customer_certificate(
        public_key=key.public_key(),
        customer_id=customer_id,
        serial=random_serial(rng),
        validity=validity,
        settings=settings,
    )
    signed = time.perf_counter()
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PASSWORD.encode("ascii"))
    )
    label = pfx_filename(customer_id, settings.issuer_tag, validity.end).removesuffix(".pfx")
    pfx = pkcs12.serialize_key_and_certificates(
        label.encode("utf-8"), key, certificate, [ca.certificate], encryption
    )
    exported = time.perf_counter()
    return pfx, {
        "RSA-2048 key generation": generated - started,
        "certificate signing (RSA-3072 CA)": signed - generated,
        "PKCS#12 export (600k rounds)": exported - signed,
    }


def run_raw(
    name: str, ca: CertificateAuthority, settings: Settings, ids: list[str], threads: int
) -> Series:
    rng = secrets.SystemRandom()

    def one(customer_id: str) -> tuple[float, dict[str, float]]:
        started = time.perf_counter()
        _, phases = raw_issue(ca, settings, customer_id, rng)
        return time.perf_counter() - started, phases

    started = time.perf_counter()
    if threads == 1:
        results = [one(customer_id) for customer_id in ids]
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(one, ids))
    wall = time.perf_counter() - started
    phases: dict[str, list[float]] = {}
    for _, timings in results:
        for phase, seconds in timings.items():
            phases.setdefault(phase, []).append(seconds)
    return Series(name, [latency for latency, _ in results], wall, phases=phases)


async def run_full(
    name: str, core: Core, ids: list[str], concurrency: int
) -> tuple[Series, list[IssuedCertificate]]:
    """`concurrency` issuers (asyncio.gather) taking the next customer ID as they finish."""
    pending: Iterator[str] = iter(ids)
    latencies: list[float] = []
    issued: list[IssuedCertificate] = []

    async def issuer() -> None:
        for customer_id in pending:
            started = time.perf_counter()
            result = await core.certificates.issue(customer_id, PASSWORD, actor=ACTOR)
            latencies.append(time.perf_counter() - started)
            issued.append(result)

    monitor = LoopMonitor()
    monitor.start()
    started = time.perf_counter()
    await asyncio.gather(*(issuer() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    stall = await monitor.stop()
    return Series(name, latencies, wall, loop_stall_max=stall), issued


def check_same_work(raw_pfx: bytes, full: IssuedCertificate) -> None:
    """The floor and certcore must produce the same kind of file, or the ratio means nothing."""
    for label, blob in (("raw", raw_pfx), ("certcore", full.pkcs12)):
        loaded = pkcs12.load_pkcs12(blob, PASSWORD.encode("ascii"))
        if loaded.key is None or loaded.cert is None or len(loaded.additional_certs) != 1:
            raise SystemExit(f"bench: the {label} PKCS#12 file lacks its key or certificates")


@dataclass
class IssuanceResults:
    raw: Series
    full: Series
    raw2: Series
    full2: Series
    issued: list[IssuedCertificate]


async def bench_issuance(core: Core, n: int, say: Callable[[str], None]) -> IssuanceResults:
    settings, ca = core.settings, core.ca
    if settings.pkcs12_kdf_rounds != PKCS12_ROUNDS:
        say(f"note: certcore exports with {settings.pkcs12_kdf_rounds} PKCS#12 rounds")
    ids = customer_ids(1, 2 * n + 2)
    warm_raw, _ = raw_issue(ca, settings, ids[0], secrets.SystemRandom())
    warm_full = await core.certificates.issue(ids[1], PASSWORD, actor=ACTOR)
    check_same_work(warm_raw, warm_full)
    say(f"  raw floor, 1 thread, {n} certificates …")
    raw = run_raw("raw floor (cryptography), 1 thread", ca, settings, ids[2 : 2 + n], 1)
    say(f"  full issuance, sequential, {n} customers …")
    full, issued = await run_full("full certcore issuance, sequential", core, ids[2 : 2 + n], 1)
    say(f"  raw floor, 2 threads, {n} certificates …")
    raw2 = run_raw("raw floor (cryptography), 2 threads", ca, settings, ids[2 + n :], 2)
    say(f"  full issuance, 2 concurrent issuers, {n} customers …")
    full2, issued2 = await run_full(
        "full certcore issuance, 2 concurrent issuers", core, ids[2 + n :], 2
    )
    return IssuanceResults(raw, full, raw2, full2, [warm_full, *issued, *issued2])


# -- OCSP: files, responders, load -----------------------------------------------------------

_SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
}


def openssl_index_line(certificate: x509.Certificate) -> str:
    """One `V` line of OpenSSL's CA database (the `openssl ca` index.txt format)."""
    expires = certificate.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    hex_serial = serial_hex(certificate.serial_number)
    hex_serial = hex_serial.zfill(len(hex_serial) + len(hex_serial) % 2)  # BN_bn2hex: whole bytes
    subject = "".join(
        f"/{_SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string)}={attribute.value!s}"
        for attribute in certificate.subject
    )
    return f"V\t{expires}\t\t{hex_serial}\tunknown\t{subject}\n"


def ocsp_request_der(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


def check_ocsp_answer(der: bytes, ca_certificate: x509.Certificate, serial: int) -> str:
    """Raise unless `der` is a SUCCESSFUL, correctly signed, current GOOD answer for `serial`."""
    response = ocsp.load_der_ocsp_response(der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError(f"response status {response.response_status.name}")
    if response.serial_number != serial:
        raise ValueError("the response is about another certificate")
    if response.certificate_status is not ocsp.OCSPCertStatus.GOOD:
        raise ValueError(f"certificate status {response.certificate_status.name}")
    public_key = ca_certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    algorithm = response.signature_hash_algorithm
    assert algorithm is not None
    public_key.verify(
        response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
    )
    now = datetime.now(UTC)
    next_update = response.next_update_utc
    if response.this_update_utc > now or (next_update is not None and next_update < now):
        raise ValueError("the response is not current")
    return f"SUCCESSFUL, GOOD, signature verified, {len(der)} bytes"


def post_ocsp(url: str, body: bytes, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/ocsp-request"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer: bytes = response.read()
        return answer


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(passphrase: str) -> dict[str, str]:
    """The caller's environment without CERTDESK_* settings that would change the server."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CERTDESK_")}
    environ[PASSPHRASE_VARIABLE] = passphrase
    return environ


class Responder:
    """A server subprocess in its own process group, always stopped by `stop`."""

    label = ""
    path = "/"

    def __init__(self, workdir: Path, environ: dict[str, str]) -> None:
        self.workdir = workdir
        self.environ = environ
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.slug}.log"
        self._log: IO[bytes] | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def shown_command(self) -> str:
        """The command as the report shows it (placeholders for paths and ports)."""
        raise NotImplementedError

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=self.environ,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(
        self, body: bytes, ca_certificate: x509.Certificate, serial: int
    ) -> tuple[str, int]:
        """Poll until the responder gives a valid GOOD answer; fail loudly otherwise."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        problem = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                break
            try:
                answer = post_ocsp(self.url, body)
                return check_ocsp_answer(answer, ca_certificate, serial), len(answer)
            except (OSError, urllib.error.URLError) as exc:
                problem = f"no answer ({exc})"
            except ValueError as exc:
                problem = f"invalid answer: {exc}"
            time.sleep(0.2)
        raise SystemExit(
            f"bench: {self.label} is not answering correctly: {problem}\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            return "\n".join(f"  | {line}" for line in text)
        return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


class CertDeskResponder(Responder):
    label = "certdesk serve"
    path = "/ocsp"

    def __init__(self, workdir: Path, environ: dict[str, str], data_dir: Path) -> None:
        self.data_dir = data_dir
        super().__init__(workdir, environ)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]

    def shown_command(self) -> str:
        return "python -m bot serve --data-dir D --host 127.0.0.1 --port P"


class OpenSSLResponder(Responder):
    """`openssl ocsp -port` listens on every address (it takes no host); the run is short and
    the CA a throw-away one, and the load only ever goes to 127.0.0.1."""

    label = "openssl ocsp"

    def __init__(self, workdir: Path, environ: dict[str, str], data_dir: Path) -> None:
        self.data_dir = data_dir
        super().__init__(workdir, environ)

    def command(self) -> list[str]:
        ca_pem = str(self.data_dir / "ca.pem")
        return [
            "openssl",
            "ocsp",
            "-index",
            str(self.workdir / "index.txt"),
            "-port",
            str(self.port),
            "-rsigner",
            ca_pem,
            "-rkey",
            str(self.data_dir / "ca-key.pem"),
            "-passin",
            f"env:{PASSPHRASE_VARIABLE}",
            "-CA",
            ca_pem,
            "-nmin",
            "60",
            "-ignore_err",
        ]

    def shown_command(self) -> str:
        return (
            "openssl ocsp -index index.txt -port P -rsigner ca.pem -rkey ca-key.pem "
            f"-passin env:{PASSPHRASE_VARIABLE} -CA ca.pem -nmin 60 -ignore_err"
        )


@dataclass
class LoadResult:
    requests: int
    duration: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float

    @property
    def good(self) -> int:
        return self.requests - self.errors.get("status", 0)

    @property
    def per_second(self) -> float:
        return self.good / self.duration

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def error_text(self) -> str:
        shown = [f"{kind} {count}" for kind, count in self.errors.items() if count]
        return ", ".join(shown) if shown else "0"


# The load generator. wrk cannot be used against `openssl ocsp`: wrk opens one connection at
# start-up to check the address and closes it without sending anything, and the OpenSSL 3.0
# responder, which serves one connection at a time, then spins on read() returning EOF
# forever (strace: tens of thousands of `read(4, "", 4096) = 0`) and answers nothing else
# (0 responses in 5 s, with or without -timeout). So both responders are measured with the
# same Python generator: LOAD_PROCESSES processes (like wrk's threads), LOAD_CONNECTIONS
# connections in all, HTTP/1.1, reconnecting whenever the server closes, as `openssl ocsp`
# does after every answer. wrk, when installed, adds one row for certdesk alone.

LOAD_PROCESSES = 2
LOAD_CONNECTIONS = 16


async def _load_loop(
    port: int,
    path: str,
    body: bytes,
    answer_length: int,
    start_at: float,
    duration: float,
    connections: int,
) -> tuple[list[float], dict[str, int], float]:
    """`connections` clients POSTing `body` from wall-clock `start_at` for `duration` s.

    Every answer must be 2xx and as long as the validated one (a fresh signature does not
    change the length; an OCSP error response would), or it counts as an error."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/ocsp-request\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("ascii") + body
    errors = {"connect": 0, "read": 0, "status": 0, "timeout": 0}
    latencies: list[float] = []
    await asyncio.sleep(max(0.0, start_at - time.time()))
    end = time.monotonic() + duration

    async def client() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                if writer is None:
                    try:
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(HOST, port), LOAD_TIMEOUT_SECONDS
                        )
                    except (OSError, TimeoutError):
                        errors["connect"] += 1
                        await asyncio.sleep(0.01)
                        continue
                assert reader is not None and writer is not None
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), LOAD_TIMEOUT_SECONDS)
                lines = head.decode("latin-1").split("\r\n")
                version, status = lines[0].split(" ", 2)[:2]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                length = int(headers.get("content-length", "0"))
                await asyncio.wait_for(reader.readexactly(length), LOAD_TIMEOUT_SECONDS)
                latencies.append(time.perf_counter() - started)
                if not status.startswith("2") or length != answer_length:
                    errors["status"] += 1
                connection = headers.get("connection", "").lower()
                if connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
                    _close(writer)
                    reader = writer = None
            except TimeoutError:
                errors["timeout"] += 1
                _close(writer)
                reader = writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                errors["read"] += 1
                _close(writer)
                reader = writer = None
        _close(writer)

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, errors, time.monotonic() - started


def _load_process(*args: Any) -> tuple[list[float], dict[str, int], float]:
    return asyncio.run(_load_loop(*args))


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()


class PythonLoad:
    """LOAD_PROCESSES worker processes, started once and reused for every responder."""

    def __init__(self) -> None:
        self.pool = ProcessPoolExecutor(LOAD_PROCESSES, mp_context=get_context("spawn"))
        # Start the workers (and their imports) now, so no run pays for them.
        list(self.pool.map(time.sleep, [0.5] * LOAD_PROCESSES))

    def run(
        self, port: int, path: str, body: bytes, answer_length: int, duration: float
    ) -> LoadResult:
        start_at = time.time() + 0.5
        share = [LOAD_CONNECTIONS // LOAD_PROCESSES] * LOAD_PROCESSES
        share[0] += LOAD_CONNECTIONS - sum(share)
        futures = [
            self.pool.submit(
                _load_process, port, path, body, answer_length, start_at, duration, connections
            )
            for connections in share
        ]
        latencies: list[float] = []
        errors: dict[str, int] = {}
        elapsed = 0.0
        for future in futures:
            part, part_errors, part_elapsed = future.result(timeout=duration + 60)
            latencies += part
            for kind, count in part_errors.items():
                errors[kind] = errors.get(kind, 0) + count
            elapsed = max(elapsed, part_elapsed)
        return LoadResult(
            requests=len(latencies),
            duration=elapsed,
            errors=errors,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def wrk_script(body: bytes) -> str:
    """POST the DER body; report the summary on one parseable line."""
    literal = "".join(f"\\{byte:03d}" for byte in body)
    return f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/ocsp-request"
wrk.body = "{literal}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%.0f duration_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f "
    .. "timeout=%.0f p50_us=%.0f p99_us=%.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(url: str, script: Path, duration: float) -> LoadResult:
    command = [
        "wrk",
        f"-t{LOAD_PROCESSES}",
        f"-c{LOAD_CONNECTIONS}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={LOAD_TIMEOUT_SECONDS:.0f}s",
        "-s",
        str(script),
        url,
    ]
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    match = re.search(r"^BENCH (.*)$", finished.stdout, re.MULTILINE)
    if finished.returncode != 0 or match is None:
        raise SystemExit(f"bench: wrk failed:\n{finished.stdout}{finished.stderr}")
    values = {key: float(value) for key, value in re.findall(r"(\w+)=([\d.]+)", match.group(1))}
    kinds = ("connect", "read", "write", "status", "timeout")
    return LoadResult(
        requests=int(values["requests"]),
        duration=values["duration_us"] / 1e6,
        errors={kind: int(values[kind]) for kind in kinds},
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
    )


@dataclass
class OcspRun:
    responder: str
    loadgen: str
    command: str
    answer: str
    load: LoadResult


@dataclass
class OcspResults:
    runs: list[OcspRun]
    certificates: int

    def run(self, responder: str, loadgen: str = "python") -> OcspRun:
        return next(r for r in self.runs if (r.responder, r.loadgen) == (responder, loadgen))


def bench_ocsp(
    workdir: Path,
    data_dir: Path,
    passphrase: str,
    ca_certificate: x509.Certificate,
    issued: list[IssuedCertificate],
    options: argparse.Namespace,
    say: Callable[[str], None],
) -> OcspResults:
    certificates = [item.record.certificate for item in issued]
    (workdir / "index.txt").write_text("".join(openssl_index_line(c) for c in certificates))
    (workdir / "index.txt.attr").write_text("unique_subject = no\n")
    target = certificates[len(certificates) // 2]
    body = ocsp_request_der(target, ca_certificate)
    script = workdir / "post.lua"
    script.write_text(wrk_script(body))
    environ = clean_environment(passphrase)
    duration = options.duration

    plan: list[tuple[Responder, str]] = [
        (CertDeskResponder(workdir, environ, data_dir), "python"),
        (OpenSSLResponder(workdir, environ, data_dir), "python"),
    ]
    if shutil.which("wrk"):
        plan.append((CertDeskResponder(workdir, environ, data_dir), "wrk"))
    runs = []
    load = PythonLoad()
    try:
        for responder, loadgen in plan:
            try:
                responder.start()
                answer, length = responder.wait_ready(body, ca_certificate, target.serial_number)
                say(f"  {responder.label}: {answer}; {loadgen} load for {duration:g} s …")
                if loadgen == "wrk":
                    result = run_wrk(responder.url, script, duration)
                else:
                    result = load.run(responder.port, responder.path, body, length, duration)
                responder.wait_ready(body, ca_certificate, target.serial_number)  # still right
                runs.append(
                    OcspRun(responder.label, loadgen, responder.shown_command(), answer, result)
                )
            finally:
                responder.stop()
    finally:
        load.close()
    return OcspResults(runs, len(certificates))


# -- the machine ------------------------------------------------------------------------------


CPU_FEATURES = (("sha_ni", "SHA-NI"), ("aes", "AES-NI"), ("avx2", "AVX2"), ("adx", "ADX"))


def machine_rows() -> list[tuple[str, str]]:
    cpu, flags = "unknown", set[str]()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu == "unknown":
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    # What the PBKDF2 and AES in PKCS#12 and the RSA arithmetic lean on.
    extensions = [name for flag, name in CPU_FEATURES if flag in flags]
    if extensions:
        cpu += f" ({', '.join(extensions)})"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical CPUs" + (f", {usable} usable" if usable else "")
    openssl_cli = _tool_version(["openssl", "version"])
    wrk = _tool_version(["wrk", "-v"]) if shutil.which("wrk") else "not installed"
    return [
        ("CPU", cpu),
        ("Cores", cores),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("cryptography", f"{cryptography.__version__} ({openssl_backend.openssl_version_text()})"),
        ("OpenSSL (CLI responder)", openssl_cli),
        ("wrk", wrk.split(" [")[0]),
    ]


class CpuWitness:
    """How much of the machine other processes used while a phase ran.

    Benchmarks on a shared 2-core machine are only as good as its quiet: busy time from
    /proc/stat minus this process's and its (waited-for) children's CPU time is what somebody
    else took.
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy = _machine_busy_seconds()
        self.own = _own_cpu_seconds()

    def others_share(self) -> float | None:
        """Fraction of all CPUs' time used by other processes since construction."""
        wall = time.monotonic() - self.started
        busy = _machine_busy_seconds()
        if busy is None or self.busy is None or wall <= 0:
            return None
        others = (busy - self.busy) - (_own_cpu_seconds() - self.own)
        return max(0.0, others / (wall * (os.cpu_count() or 1)))


def _machine_busy_seconds() -> float | None:
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, first[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _tool_version(command: list[str]) -> str:
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (finished.stdout or finished.stderr).strip().splitlines()[0]


# -- tables -------------------------------------------------------------------------------------


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    numeric: bool = True
    """Right-align every column but the first (numbers); False left-aligns them all."""

    def text(self) -> str:
        widths = [
            max(len(row[i]) for row in [self.header, *self.rows]) for i in range(len(self.header))
        ]

        def line(cells: list[str]) -> str:
            return "  ".join(
                cell.ljust(width) if i == 0 or not self.numeric else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rule = "  ".join("-" * width for width in widths)
        body = [self.title, line(self.header), rule, *(line(row) for row in self.rows)]
        return "\n".join(body + [f"  {note}" for note in self.notes])

    def markdown(self) -> str:
        align = ["---"] + ["---:" if self.numeric else "---"] * (len(self.header) - 1)
        lines = [
            f"**{self.title}**",
            "",
            "| " + " | ".join(self.header) + " |",
            "| " + " | ".join(align) + " |",
            *(_markdown_row(row) for row in self.rows),
        ]
        if self.notes:
            lines += ["", *(note if note.startswith("- ") else f"- {note}" for note in self.notes)]
        return "\n".join(lines)


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def issuance_tables(results: IssuanceResults) -> list[Table]:
    def row(series: Series) -> list[str]:
        stall = series.loop_stall_max
        return [
            series.name,
            str(len(series.latencies)),
            f"{series.ms(50):.0f}",
            f"{series.ms(95):.0f}",
            f"{series.mean_ms:.0f}",
            f"{series.per_second:.2f}",
            "–" if stall is None else f"{stall * 1000:.0f}",
        ]

    r = results
    latency = Table(
        "Issuance: latency and throughput",
        ["run", "N", "p50 ms", "p95 ms", "mean ms", "certs/s", "loop stall max ms"],
        [row(r.raw), row(r.full), row(r.raw2), row(r.full2)],
        [
            "raw floor = RSA-2048 keygen + CertificateAuthority.sign_customer_certificate + "
            "PKCS#12 (AES-256-CBC, PBKDF2-SHA256 600,000 rounds, SHA-256 MAC), no DB",
            "full = CertificateService.issue as `certdesk serve` runs it (key generation and "
            "PKCS#12 export in worker processes): SQLite (WAL) in a temp dir, audit trail, "
            "same PKCS#12; one warm-up issuance of each kind is not counted",
            "loop stall max = longest time the event loop could not run (5 ms ticker)",
        ],
    )
    phases = Table(
        "Issuance: where the floor's time goes (raw loop, 1 thread)",
        ["phase", "mean ms", "p95 ms", "share"],
        [],
    )
    total = sum(mean(values) for values in r.raw.phases.values())
    for phase, values in r.raw.phases.items():
        phases.rows.append(
            [
                phase,
                f"{mean(values) * 1000:.1f}",
                f"{percentile(values, 95) * 1000:.1f}",
                f"{mean(values) / total:.0%}",
            ]
        )
    ratio = r.full.per_second / r.raw.per_second
    ratio2 = r.full2.per_second / r.raw2.per_second
    targets = Table(
        "Issuance: targets",
        ["measure", "value", "target", "result"],
        [
            [
                "full issuance p95 (sequential)",
                f"{r.full.ms(95):.0f} ms",
                f"≤ {ISSUE_P95_TARGET_MS:.0f} ms",
                verdict(r.full.ms(95) <= ISSUE_P95_TARGET_MS),
            ],
            [
                "throughput full / raw (sequential)",
                f"{ratio:.2f}×",
                f"≥ {THROUGHPUT_RATIO_TARGET:.1f}×",
                verdict(ratio >= THROUGHPUT_RATIO_TARGET),
            ],
            [
                "full issuance p95 (2 concurrent issuers)",
                f"{r.full2.ms(95):.0f} ms",
                "info",
                "–",
            ],
            ["throughput full / raw (2 issuers / 2 threads)", f"{ratio2:.2f}×", "info", "–"],
            [
                "2 concurrent issuers vs sequential (full)",
                f"{r.full2.per_second / r.full.per_second:.2f}×",
                "info",
                "–",
            ],
        ],
    )
    return [latency, phases, targets]


def ocsp_tables(results: OcspResults, duration: float) -> list[Table]:
    baseline = results.run("openssl ocsp")
    rows = []
    for run in results.runs:
        rows.append(
            [
                run.responder,
                "wrk" if run.loadgen == "wrk" else "Python",
                f"{run.load.per_second:,.0f}",
                f"{run.load.p50_ms:.1f}",
                f"{run.load.p99_ms:.1f}",
                f"{run.load.good:,}",
                run.load.error_text(),
                f"{run.load.per_second / baseline.load.per_second:.1f}×",
            ]
        )
    seconds = f"{duration:g} s"
    notes = [
        f"Python load: {LOAD_PROCESSES} processes, {LOAD_CONNECTIONS} connections in all, "
        f"{seconds} per responder, HTTP/1.1 POST of the DER request (application/ocsp-request), "
        "reconnecting when the server closes; the same generator for every Python row",
        f"wrk: -t{LOAD_PROCESSES} -c{LOAD_CONNECTIONS} -d{max(1, round(duration))}s with a Lua "
        "POST script; certdesk only, because wrk's start-up probe connection (opened and closed "
        "without a request) wedges `openssl ocsp` 3.0, which then spins on EOF and answers "
        "nothing",
        "request: SHA-1 CertID of one issued certificate, no nonce; each responder's answer "
        "was checked before and after its run (SUCCESSFUL, GOOD, CA signature, current); "
        "under Python load an answer that is not 2xx or not of that length is an error",
        f"{results.certificates} issued certificates, in the CertDesk database and in "
        "OpenSSL's index.txt; load generator and server share the 2 cores",
        *(f"{run.responder}: {run.command}" for run in results.runs if run.loadgen == "python"),
    ]
    table = Table(
        "OCSP: responses per second",
        ["responder", "load", "responses/s", "p50 ms", "p99 ms", "responses", "errors", "ratio"],
        rows,
        notes,
    )
    certdesk = results.run("certdesk serve")
    ratio = certdesk.load.per_second / baseline.load.per_second
    target = Table(
        "OCSP: target",
        ["measure", "value", "target", "result"],
        [
            [
                "certdesk serve / openssl ocsp (same Python load)",
                f"{ratio:.1f}×",
                f"≥ {OCSP_RATIO_TARGET:.0f}×",
                verdict(ratio >= OCSP_RATIO_TARGET and certdesk.load.error_count == 0),
            ]
        ],
    )
    return [table, target]


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, short runs (smoke test)")
    parser.add_argument("--n", type=int, default=None, help="issuances per run (default 50)")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per OCSP load run (default 10)"
    )
    args = parser.parse_args(argv)
    args.n = args.n or (6 if args.quick else 50)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    if args.n < 2 or args.duration <= 0:
        parser.error("--n must be at least 2 and --duration positive")
    if not shutil.which("openssl"):
        parser.error("the openssl command is not installed")
    return args


async def _issue_phase(
    settings: Settings, passphrase: str, n: int, say: Callable[[str], None]
) -> tuple[IssuanceResults, x509.Certificate]:
    workers = process_pool()  # as `certdesk serve` runs issuance
    core = await Core.open(
        settings,
        create_ca=True,
        environ={PASSPHRASE_VARIABLE: passphrase},
        keywork=KeyWork(workers),
    )
    try:
        return await bench_issuance(core, n, say), core.ca.certificate
    finally:
        await core.close()
        workers.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    load_average = os.getloadavg()
    machine = Table(
        "Machine", ["item", "value"], [[k, v] for k, v in machine_rows()], numeric=False
    )
    workdir = Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    try:
        data_dir = workdir / "var"
        passphrase = secrets.token_urlsafe(24)
        settings = load_settings(environ={}, data_dir=data_dir)
        say(f"issuance (N={args.n}) …")
        witness = CpuWitness()
        issuance, ca_certificate = asyncio.run(_issue_phase(settings, passphrase, args.n, say))
        others = {"issuance": witness.others_share()}
        witness = CpuWitness()
        say(f"OCSP ({args.duration:g} s per responder) …")
        ocsp_results = bench_ocsp(
            workdir,
            data_dir,
            passphrase,
            ca_certificate,
            issuance.issued,
            args,
            say,
        )
        others["OCSP"] = witness.others_share()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    tables = [machine, *issuance_tables(issuance), *ocsp_tables(ocsp_results, args.duration)]
    load_before = ", ".join(f"{value:.2f}" for value in load_average)
    shares = [f"{phase} {share:.0%}" for phase, share in others.items() if share is not None]
    machine.rows.append(["Load average before the run", load_before])
    machine.rows.append(["Other load on the CPUs (incl. steal)", ", ".join(shares) or "unknown"])
    busy = [phase for phase, share in others.items() if share is not None and share > 0.1]
    if busy:
        machine.notes.append(
            "WARNING: other processes (or the hypervisor) took more than 10% of the CPUs during "
            f"{' and '.join(busy)}; these numbers are pessimistic: rerun on a quiet machine"
        )
    elapsed = time.perf_counter() - started
    mode = "quick" if args.quick else "default"
    print(f"CertDesk benchmark ({mode} run, {elapsed:.0f} s, {datetime.now(UTC):%Y-%m-%d})")
    print()
    for table in tables:
        print(table.text())
        print()
    print("Markdown (for the README's performance section):")
    print()
    for table in tables:
        print(table.markdown())
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
