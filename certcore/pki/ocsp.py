"""The OCSP responder (RFC 6960, RFC 5019 profile), answering from pre-signed responses.

Signing is the expensive part of an OCSP answer and relying parties ask about the same few
certificates over and over, so each certificate's response is signed once per hash algorithm,
kept, and handed out as bytes until it nears its nextUpdate. A revocation re-signs the affected
responses at once (`refresh`), and `refresh_expiring` re-signs the ones about to expire. Nonces
are not echoed: RFC 5019 responders answer from pre-produced responses.

A serial the CA never reserved is asked about by nobody but a prober, who can ask about a new
one every time: each such answer costs a signature, on the event loop. So "unknown" answers are
kept apart (a bounded cache of their own, least recently asked first out, so a flood cannot push
out the pre-signed answers about real certificates), and at most `UNKNOWN_SIGNATURES_PER_SECOND`
of them are signed in any second; beyond that the answer is the unsigned "tryLater" (RFC 6960
§2.3), which costs nothing. Answers about certificates the CA holds are never rationed: they are
signed once per certificate and kept.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from certcore.clock import Clock
from certcore.pki.authority import CertificateAuthority
from certcore.pki.cakey import signature_hash
from certcore.pki.records import CertificateRecord, RecordState

StatusLookup = Callable[[int], Awaitable[CertificateRecord | None]]
"""Finds the record for a serial number; None when the CA never reserved that serial."""

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
PRESIGNED_HASHES = ("sha1", "sha256")
MAX_CACHED = 500_000
MAX_CACHED_UNKNOWN = 20_000
"""Signed "unknown" answers kept, about 12 MB at most (RSA-3072)."""
UNKNOWN_SIGNATURES_PER_SECOND = 50
"""About 5% of one core (an answer signed with RSA-3072 takes about 1 ms)."""


@dataclass(frozen=True)
class CachedResponse:
    der: bytes
    next_update: datetime


SignatureBudget = tuple[datetime, int]
"""The second (truncated clock time) and how many "unknown" answers were signed in it."""


def take_signature(budget: SignatureBudget | None, now: datetime) -> SignatureBudget | None:
    """The budget after signing one more "unknown" answer at `now`; None when this second's
    `UNKNOWN_SIGNATURES_PER_SECOND` are spent."""
    second = now.replace(microsecond=0)
    used = budget[1] if budget is not None and budget[0] == second else 0
    if used >= UNKNOWN_SIGNATURES_PER_SECOND:
        return None
    return second, used + 1


class OcspResponder:
    def __init__(
        self,
        ca: CertificateAuthority,
        lookup: StatusLookup,
        clock: Clock,
        *,
        validity: timedelta,
        refresh_margin: timedelta,
    ) -> None:
        self.ca = ca
        self.lookup = lookup
        self.clock = clock
        self.validity = validity
        self.refresh_margin = refresh_margin
        self._issuer = {name: _issuer_hashes(ca, algorithm()) for name, algorithm in HASHES.items()}
        self._cache: dict[tuple[str, int], CachedResponse] = {}
        self._unknown: OrderedDict[tuple[str, int], CachedResponse] = OrderedDict()
        """Answers about serials no record holds, least recently asked first."""
        self._unknown_budget: SignatureBudget | None = None
        self._crl_number: int | None = None
        self._generation = 0
        """Bumped when another process may have revoked (`observe_crl_number`)."""
        self._refreshes = 0
        """Bumped by every `refresh` here. An answer whose lookup overlapped either bump may
        be stale: it is served once but never cached."""

    @property
    def generation(self) -> int:
        return self._generation

    async def respond(self, request_der: bytes) -> bytes:
        """DER response for a DER request; protocol errors become OCSP error responses."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm.name
        except (ValueError, UnsupportedAlgorithm):
            return _error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (
            algorithm not in self._issuer
            or (
                request.issuer_name_hash,
                request.issuer_key_hash,
            )
            != self._issuer[algorithm]
        ):
            return _error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        serial = request.serial_number
        if serial < 1:  # RFC 5280 §4.1.2.2: a serial number is a positive integer
            return _error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        key = (algorithm, serial)
        cached = self._current(key)
        if cached is not None:
            return cached.der
        before = (self._generation, self._refreshes)
        record = await self.lookup(serial)
        fresh = before == (self._generation, self._refreshes)
        if record is None:
            return self._unknown_answer(algorithm, serial, keep=fresh)
        return self._sign(algorithm, serial, record, cache=fresh)

    async def refresh(self, serial: int) -> None:
        """Re-sign a certificate's responses now, as after its revocation or issuance."""
        self._refreshes += 1
        generation = self._generation
        for algorithm in HASHES:  # no answer from before this call may outlive it
            self._cache.pop((algorithm, serial), None)
            self._unknown.pop((algorithm, serial), None)
        record = await self.lookup(serial)
        fresh = generation == self._generation
        for algorithm in PRESIGNED_HASHES:
            self._sign(algorithm, serial, record, cache=record is not None and fresh)

    async def prewarm(self, records: list[CertificateRecord]) -> None:
        for record in records:
            for algorithm in PRESIGNED_HASHES:
                if (algorithm, record.serial_number) not in self._cache:
                    self._sign(algorithm, record.serial_number, record, cache=True)

    def observe_crl_number(self, crl_number: int | None) -> bool:
        """Drop every cached response when another process has published a revocation.

        Every revocation, wherever it happens (an operator command, another instance), publishes
        a CRL with a higher number in the same transaction. Watching that one number is enough
        to learn that some cached "good" may be stale; revocations are rare, so re-signing
        lazily after a change costs little. Returns whether the cache was dropped.
        """
        changed = self._crl_number is not None and crl_number != self._crl_number
        self._crl_number = crl_number
        if changed:
            self._generation += 1
            self._cache.clear()
            self._unknown.clear()
        return changed

    async def refresh_expiring(self) -> int:
        """Re-sign every cached response that is within the refresh margin of expiry."""
        due_before = self.clock() + self.refresh_margin
        due = [key for key, cached in self._cache.items() if cached.next_update <= due_before]
        for algorithm, serial in due:
            before = (self._generation, self._refreshes)
            record = await self.lookup(serial)
            fresh = before == (self._generation, self._refreshes)
            self._sign(algorithm, serial, record, cache=fresh)
        return len(due)

    def _current(self, key: tuple[str, int]) -> CachedResponse | None:
        """The kept answer for (hash algorithm, serial), unless it nears its nextUpdate."""
        cached = self._cache.get(key)
        if cached is None:
            cached = self._unknown.get(key)
            if cached is not None:
                self._unknown.move_to_end(key)
        if cached is not None and self.clock() < cached.next_update - self.refresh_margin:
            return cached
        return None

    def _unknown_answer(self, algorithm: str, serial: int, *, keep: bool) -> bytes:
        """A signed "unknown" within this second's budget, else "tryLater" (no signature)."""
        budget = take_signature(self._unknown_budget, self.clock())
        if budget is None:
            return _error(ocsp.OCSPResponseStatus.TRY_LATER)
        self._unknown_budget = budget
        answer = self._signed(algorithm, serial, None)
        if keep:
            self._unknown[algorithm, serial] = answer
            self._unknown.move_to_end((algorithm, serial))
            if len(self._unknown) > MAX_CACHED_UNKNOWN:
                self._unknown.popitem(last=False)
        return answer.der

    def _sign(
        self, algorithm: str, serial: int, record: CertificateRecord | None, *, cache: bool
    ) -> bytes:
        answer = self._signed(algorithm, serial, record)
        if cache:
            if len(self._cache) >= MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[(algorithm, serial)] = answer
        return answer.der

    def _signed(
        self, algorithm: str, serial: int, record: CertificateRecord | None
    ) -> CachedResponse:
        this_update = self.clock().replace(microsecond=0)
        next_update = this_update + self.validity
        status, revoked_at, reason = _status_of(record)
        name_hash, key_hash = self._issuer[algorithm]
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=serial,
                algorithm=HASHES[algorithm](),
                cert_status=status,
                this_update=this_update,
                next_update=next_update,
                revocation_time=revoked_at,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca.certificate)
            .sign(self.ca.key, signature_hash(self.ca.key))
        )
        return CachedResponse(response.public_bytes(serialization.Encoding.DER), next_update)


def _status_of(
    record: CertificateRecord | None,
) -> tuple[ocsp.OCSPCertStatus, datetime | None, x509.ReasonFlags | None]:
    if record is None or record.state is not RecordState.ISSUED:
        return ocsp.OCSPCertStatus.UNKNOWN, None, None
    if record.revoked_at is not None:
        reason = record.revoked_reason.x509 if record.revoked_reason else None
        return ocsp.OCSPCertStatus.REVOKED, record.revoked_at, reason
    return ocsp.OCSPCertStatus.GOOD, None, None


def _issuer_hashes(
    ca: CertificateAuthority, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """CertID's issuerNameHash and issuerKeyHash (over the subjectPublicKey bits) for our CA."""
    public_key = ca.certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        key_bits = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        key_bits = public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:  # pragma: no cover - CAFiles accepts RSA and EC keys only
        raise TypeError("unsupported CA key type")
    name_der = ca.certificate.subject.public_bytes()
    return _digest(algorithm, name_der), _digest(algorithm, key_bits)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm.name, data).digest()


@functools.cache
def _error(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
