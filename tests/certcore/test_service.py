"""CertificateService, scenario by scenario, on the frozen clock of the `core` fixture.

The clock starts at 10:00 on 24 November 2026 in Taipei, so a certificate issued "now" is valid
until 2027-11-24 23:59:59 +08:00 and its renewal window (可更新區間) opens 30 days earlier, at
2027-10-25 23:59:59. Everything here runs against the real CA, SQLite database, CRL, OCSP
responder and audit trail; only time stands still.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from sqlalchemy import Table, func, insert, select

from certcore.audit import Actor, verify_chain
from certcore.clock import FrozenClock, taipei
from certcore.config import Settings, load_settings
from certcore.core import Core
from certcore.errors import (
    AlreadyRevoked,
    ConfigurationError,
    InvalidCustomerId,
    InvalidExportPassword,
    NotRenewable,
    RevocationQuotaExhausted,
    UnknownCertificate,
    ValidCertificateExists,
)
from certcore.pki import (
    CertificateAuthority,
    CertificateRecord,
    CertificateStatus,
    IssuedCertificate,
    Pkcs12Format,
    RecordState,
    RevocationReason,
    Window,
    public_key_fingerprint,
    random_serial,
    refresh_crl_if_due,
    serial_hex,
    validity_period,
)
from certcore.pki.records import certificates_of, get_certificate
from certcore.storage.schema import (
    audit_log,
    certificates,
    crl_state,
    holder_locks,
    revocation_quota,
)

ALICE = "A123456789"
BOB = "B123456780"
CAROL = "C123456781"
DAVE = "D223456784"
PASSWORD = "Secret42"

CUSTOMER = Actor("customer:line:U0001", "line")
OPERATOR = Actor("operator:test", "cli")

SECOND = timedelta(seconds=1)
NOT_AFTER = taipei(2027, 11, 24, 23, 59, 59)
WINDOW_START = taipei(2027, 10, 25, 23, 59, 59)


# -- helpers ------------------------------------------------------------------------------


async def count_rows(core: Core, table: Table) -> int:
    async with core.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def record_of(core: Core, serial: str) -> CertificateRecord:
    async with core.db.read() as conn:
        record = await get_certificate(conn, serial)
    assert record is not None, f"no record for {serial}"
    return record


async def records_of(core: Core, customer_id: str) -> list[CertificateRecord]:
    async with core.db.read() as conn:
        return await certificates_of(conn, customer_id)


async def audit_actions(core: Core) -> list[str]:
    async with core.db.read() as conn:
        rows = await conn.execute(select(audit_log.c.action).order_by(audit_log.c.seq))
        return list(rows.scalars())


async def published_crl(core: Core) -> x509.CertificateRevocationList:
    """The CRL as the server hands it out, checked against the CA's key."""
    async with core.db.read() as conn:
        der = (await conn.execute(select(crl_state.c.der))).scalar_one()
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(ca_public_key(core))
    return crl


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def crl_entry(crl: x509.CertificateRevocationList, serial: str) -> x509.RevokedCertificate | None:
    return crl.get_revoked_certificate_by_serial_number(int(serial, 16))


async def ocsp_answer(
    core: Core, serial: str, algorithm: hashes.HashAlgorithm | None = None
) -> ocsp.OCSPResponse:
    """Ask the responder about a serial, with a CertID built by hand (works without a DER)."""
    algorithm = algorithm or hashes.SHA256()
    ca = core.ca.certificate
    key_bits = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )

    def digest(data: bytes) -> bytes:
        return hashlib.new(algorithm.name, data).digest()

    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            digest(ca.subject.public_bytes()), digest(key_bits), int(serial, 16), algorithm
        )
        .build()
    )
    answer = ocsp.load_der_ocsp_response(
        await core.ocsp.respond(request.public_bytes(serialization.Encoding.DER))
    )
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.serial_number == int(serial, 16)
    return answer


_HELD_KEY = ec.generate_private_key(ec.SECP256R1())


async def holding(core: Core, customer_id: str) -> str:
    """A certificate the customer holds, signed by the CA and written straight into the table.

    It skips key generation, PKCS#12 and the one-valid-certificate rule: the quota, race and CRL
    scenarios need several revocable certificates of one customer and are not about issuance.
    """
    now = core.clock()
    serial = random_serial(core.certificates.rng)
    validity = validity_period(now, core.settings.validity_months)
    certificate = core.ca.sign_customer_certificate(
        public_key=_HELD_KEY.public_key(),
        customer_id=customer_id,
        serial=serial,
        validity=validity,
        settings=core.settings,
    )
    async with core.db.write() as conn:
        await conn.execute(
            insert(certificates).values(
                serial=serial_hex(serial),
                customer_id=customer_id,
                state=RecordState.ISSUED.value,
                not_before=validity.start,
                not_after=validity.end,
                public_key_sha256=public_key_fingerprint(_HELD_KEY.public_key()),
                der=certificate.public_bytes(serialization.Encoding.DER),
                created_at=now,
                issued_at=now,
            )
        )
    return serial_hex(serial)


async def issue(core: Core, customer_id: str = ALICE) -> IssuedCertificate:
    return await core.certificates.issue(customer_id, PASSWORD, actor=CUSTOMER)


async def revoke_online(core: Core, serial: str) -> CertificateRecord:
    return await core.certificates.revoke(
        serial, RevocationReason.KEY_COMPROMISE, actor=CUSTOMER, online=True
    )


def ca_public_key(core: Core) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    public_key = core.ca.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return public_key


def customer_public_key(
    key: x509.Certificate | PrivateKeyTypes | None,
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The public key of a customer certificate or private key, which is RSA or EC."""
    assert key is not None
    public_key = key.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return public_key


def split_outcomes(results: Sequence[object]) -> tuple[list[object], list[BaseException]]:
    failures = [r for r in results if isinstance(r, BaseException)]
    return [r for r in results if not isinstance(r, BaseException)], failures


# -- issuance -----------------------------------------------------------------------------


async def test_issue_delivers_a_signed_certificate_in_a_pkcs12_file(
    core: Core, clock: FrozenClock
) -> None:
    # 00:30 on the 24th in Taipei is still 16:30 on the 23rd in UTC: the Taipei date counts.
    clock.now = taipei(2026, 11, 24, 0, 30, 0)
    issued = await core.certificates.issue(ALICE, PASSWORD, actor=CUSTOMER)

    record = issued.record
    assert record.state is RecordState.ISSUED
    assert record.customer_id == ALICE
    assert record.not_before == clock.now
    assert record.not_after == NOT_AFTER
    assert record.issued_at == clock.now
    assert record.renewal_of is None
    assert not record.revoked
    assert record.status(clock.now, 30) is CertificateStatus.VALID

    assert record.der is not None
    certificate = x509.load_der_x509_certificate(record.der)
    assert certificate.serial_number == record.serial_number
    assert record.serial == format(certificate.serial_number, "X")
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == ALICE
    assert certificate.not_valid_after_utc == NOT_AFTER
    certificate.verify_directly_issued_by(core.ca.certificate)
    assert record.public_key_sha256 == public_key_fingerprint(customer_public_key(certificate))

    assert issued.filename == "A123456789-CERTDESK(2027-11-24).pfx"
    bundle = pkcs12.load_pkcs12(issued.pkcs12, PASSWORD.encode())
    assert bundle.cert is not None and bundle.key is not None
    assert bundle.cert.certificate == certificate
    assert bundle.cert.friendly_name == b"A123456789-CERTDESK(2027-11-24)"
    assert (
        customer_public_key(bundle.key).public_numbers()
        == customer_public_key(certificate).public_numbers()
    )
    assert [extra.certificate for extra in bundle.additional_certs] == [core.ca.certificate]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(issued.pkcs12, b"Wrong123")

    assert await audit_actions(core) == ["certificate.requested", "certificate.issued"]
    answer = await ocsp_answer(core, record.serial)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


async def test_compatible_format_opens_with_the_same_password(core: Core) -> None:
    issued = await core.certificates.issue(BOB, "abcd", actor=OPERATOR, fmt=Pkcs12Format.COMPATIBLE)
    bundle = pkcs12.load_pkcs12(issued.pkcs12, b"abcd")
    assert bundle.cert is not None
    assert bundle.cert.certificate.serial_number == issued.record.serial_number
    assert [extra.certificate for extra in bundle.additional_certs] == [core.ca.certificate]
    assert issued.filename == "B123456780-CERTDESK(2027-11-24).pfx"


@pytest.mark.parametrize(
    "customer_id",
    [
        pytest.param("A123456788", id="bad-checksum"),
        pytest.param("A12345678", id="too-short"),
        pytest.param("a123456789", id="not-normalised-lower-case"),
        pytest.param("Ａ123456789", id="not-normalised-full-width"),
        pytest.param("04595253", id="bad-UBN"),
        pytest.param("", id="empty"),
    ],
)
async def test_invalid_customer_id_is_refused_before_anything_is_written(
    core: Core, customer_id: str
) -> None:
    with pytest.raises(InvalidCustomerId):
        await core.certificates.issue(customer_id, PASSWORD, actor=CUSTOMER)
    for table in (certificates, audit_log, holder_locks):
        assert await count_rows(core, table) == 0


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("abc", id="3-chars"),
        pytest.param("abcdefghijklm", id="13-chars"),
        pytest.param("abc 123", id="space"),
        pytest.param("abc-123", id="punctuation"),
        pytest.param("密碼1234", id="CJK"),
        pytest.param("abc123\n", id="trailing-newline"),
        pytest.param("", id="empty"),
    ],
)
async def test_invalid_export_password_is_refused_before_anything_is_written(
    core: Core, password: str
) -> None:
    with pytest.raises(InvalidExportPassword, match="4 to 12 letters"):
        await core.certificates.issue(ALICE, password, actor=CUSTOMER)
    for table in (certificates, audit_log, holder_locks):
        assert await count_rows(core, table) == 0


# -- one valid certificate per customer ------------------------------------------------------


async def test_a_customer_holding_a_valid_certificate_cannot_apply_again(
    core: Core, clock: FrozenClock
) -> None:
    first = await issue(core)
    audit_before = await count_rows(core, audit_log)

    with pytest.raises(ValidCertificateExists) as refused:
        await issue(core)
    assert refused.value.serial == first.record.serial
    assert "A123XXX89" in str(refused.value)
    assert ALICE not in str(refused.value)

    # Inside the renewal window it still counts: the customer renews rather than applies.
    clock.now = WINDOW_START
    with pytest.raises(ValidCertificateExists):
        await issue(core)
    clock.now = NOT_AFTER
    with pytest.raises(ValidCertificateExists):
        await issue(core)

    assert [r.serial for r in await records_of(core, ALICE)] == [first.record.serial]
    assert await count_rows(core, audit_log) == audit_before


async def test_after_revocation_the_customer_may_apply_again(core: Core) -> None:
    first = await issue(core)
    await core.certificates.revoke(
        first.record.serial, RevocationReason.KEY_COMPROMISE, actor=OPERATOR, online=False
    )
    second = await issue(core)
    assert second.record.serial != first.record.serial
    assert second.record.state is RecordState.ISSUED


async def test_after_expiry_the_customer_may_apply_again(core: Core, clock: FrozenClock) -> None:
    first = await issue(core)
    clock.now = NOT_AFTER + SECOND  # 2027-11-25 00:00:00 Taipei
    assert first.record.status(clock.now, 30) is CertificateStatus.EXPIRED
    second = await issue(core)
    assert second.record.not_after == taipei(2028, 11, 25, 23, 59, 59)
    assert second.filename == "A123456789-CERTDESK(2028-11-25).pfx"


# -- renewal ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(taipei(2026, 11, 24, 10, 0, 0), id="just-issued"),
        pytest.param(WINDOW_START - SECOND, id="one-second-before-the-window"),
        pytest.param(NOT_AFTER + SECOND, id="one-second-after-notAfter"),
    ],
)
async def test_renewal_outside_the_window_is_refused_naming_the_window(
    core: Core, clock: FrozenClock, moment: datetime
) -> None:
    issued = await issue(core)
    clock.now = moment
    with pytest.raises(NotRenewable) as refused:
        await core.certificates.renew(issued.record.serial, PASSWORD, actor=CUSTOMER)
    assert "from 2027-10-25 23:59:59 to 2027-11-24 23:59:59 (Asia/Taipei)" in str(refused.value)
    assert refused.value.window == Window(WINDOW_START, NOT_AFTER)
    assert await records_of(core, ALICE) == [await record_of(core, issued.record.serial)]
    assert not (await record_of(core, issued.record.serial)).revoked


@pytest.mark.parametrize(
    ("moment", "new_not_after"),
    [
        pytest.param(WINDOW_START, taipei(2028, 10, 25, 23, 59, 59), id="first-second"),
        pytest.param(NOT_AFTER, taipei(2028, 11, 24, 23, 59, 59), id="last-second-23:59:59"),
    ],
)
async def test_renewal_inside_the_window_supersedes_the_old_certificate(
    core: Core, clock: FrozenClock, moment: datetime, new_not_after: datetime
) -> None:
    old = await issue(core)
    clock.now = moment
    renewed = await core.certificates.renew(old.record.serial, "NewPass9", actor=CUSTOMER)

    new = renewed.record
    assert new.state is RecordState.ISSUED
    assert new.renewal_of == old.record.serial
    assert new.customer_id == ALICE
    assert new.not_before == moment
    assert new.not_after == new_not_after
    assert new.public_key_sha256 != old.record.public_key_sha256  # a new key pair
    assert renewed.filename == f"A123456789-CERTDESK({new_not_after:%Y-%m-%d}).pfx"
    assert pkcs12.load_pkcs12(renewed.pkcs12, b"NewPass9").cert is not None

    superseded = await record_of(core, old.record.serial)
    assert superseded.revoked_at == moment
    assert superseded.revoked_reason is RevocationReason.SUPERSEDED
    assert superseded.status(moment, 30) is CertificateStatus.REVOKED

    crl = await published_crl(core)
    entry = crl_entry(crl, old.record.serial)
    assert entry is not None
    assert entry.revocation_date_utc == moment
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.superseded
    )
    assert crl_entry(crl, new.serial) is None

    old_answer = await ocsp_answer(core, old.record.serial)
    assert old_answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert old_answer.revocation_reason is x509.ReasonFlags.superseded
    new_answer = await ocsp_answer(core, new.serial)
    assert new_answer.certificate_status is ocsp.OCSPCertStatus.GOOD

    assert (await audit_actions(core))[-3:] == [
        "certificate.requested",
        "certificate.renewed",
        "certificate.revoked",
    ]
    # Renewal is not a customer revocation: the quota is untouched.
    assert await core.certificates.revocations_left(ALICE) == 2
    # The superseded certificate cannot be renewed a second time.
    with pytest.raises(NotRenewable, match="revoked"):
        await core.certificates.renew(old.record.serial, PASSWORD, actor=CUSTOMER)


async def test_renewing_a_revoked_certificate_is_refused(core: Core, clock: FrozenClock) -> None:
    issued = await issue(core)
    await core.certificates.revoke(issued.record.serial, None, actor=OPERATOR, online=False)
    clock.now = WINDOW_START
    with pytest.raises(NotRenewable, match=f"{issued.record.serial} is revoked"):
        await core.certificates.renew(issued.record.serial, PASSWORD, actor=CUSTOMER)
    assert len(await records_of(core, ALICE)) == 1


async def test_renewing_an_unknown_serial_is_refused(core: Core) -> None:
    with pytest.raises(UnknownCertificate, match="ABCDEF0123"):
        await core.certificates.renew("abcdef0123", PASSWORD, actor=CUSTOMER)


async def test_renewal_with_a_bad_password_writes_nothing(core: Core, clock: FrozenClock) -> None:
    issued = await issue(core)
    clock.now = WINDOW_START
    audit_before = await count_rows(core, audit_log)
    with pytest.raises(InvalidExportPassword):
        await core.certificates.renew(issued.record.serial, "no", actor=CUSTOMER)
    assert await count_rows(core, audit_log) == audit_before
    assert len(await records_of(core, ALICE)) == 1


# -- revocation ---------------------------------------------------------------------------


async def test_revoking_an_unknown_serial_is_refused(core: Core) -> None:
    with pytest.raises(UnknownCertificate, match="no issued certificate with serial 1234ABCD"):
        await core.certificates.revoke("1234abcd", None, actor=OPERATOR, online=False)
    assert await count_rows(core, audit_log) == 0


async def test_revoking_twice_is_refused_and_spends_no_second_slot(core: Core) -> None:
    serial = await holding(core, ALICE)
    await revoke_online(core, serial)
    with pytest.raises(AlreadyRevoked, match=f"{serial} is already revoked"):
        await revoke_online(core, serial)
    with pytest.raises(AlreadyRevoked):
        await core.certificates.revoke(serial, None, actor=OPERATOR, online=False)
    assert await core.certificates.revocations_left(ALICE) == 1


async def test_serials_are_accepted_in_either_case(core: Core) -> None:
    serial = await holding(core, ALICE)
    revoked = await core.certificates.revoke(serial.lower(), None, actor=OPERATOR, online=False)
    assert revoked.serial == serial
    assert revoked.revoked


async def test_revocation_without_a_reason_has_no_crl_reason_at_all(
    core: Core, clock: FrozenClock
) -> None:
    serial = await holding(core, ALICE)
    revoked = await core.certificates.revoke(serial, None, actor=OPERATOR, online=False)
    assert revoked.revoked_reason is None
    assert revoked.revoked_at == clock.now

    entry = crl_entry(await published_crl(core), serial)
    assert entry is not None
    assert len(entry.extensions) == 0  # no CRLReason, and never "unspecified"
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.CRLReason)

    answer = await ocsp_answer(core, serial)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is None


@pytest.mark.parametrize("reason", list(RevocationReason), ids=lambda reason: reason.value)
async def test_revocation_reason_reaches_crl_and_ocsp(
    core: Core, clock: FrozenClock, reason: RevocationReason
) -> None:
    serial = await holding(core, ALICE)
    revoked = await core.certificates.revoke(serial, reason, actor=OPERATOR, online=False)
    assert revoked.revoked_reason is reason
    assert revoked.status(clock.now, 30) is CertificateStatus.REVOKED

    entry = crl_entry(await published_crl(core), serial)
    assert entry is not None
    assert entry.revocation_date_utc == clock.now
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is reason.x509

    for algorithm in (hashes.SHA1(), hashes.SHA256()):
        answer = await ocsp_answer(core, serial, algorithm)
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_time_utc == clock.now
        assert answer.revocation_reason is reason.x509


async def test_crl_number_strictly_increases(core: Core, clock: FrozenClock) -> None:
    serials = [await holding(core, customer) for customer in (ALICE, BOB, CAROL, DAVE)]
    numbers = []
    for index, serial in enumerate(serials):
        clock.advance(minutes=5)
        await core.certificates.revoke(serial, None, actor=OPERATOR, online=index % 2 == 0)
        crl = await published_crl(core)
        numbers.append(crl_number(crl))
        assert crl.last_update_utc == clock.now
        assert crl.next_update_utc is not None
        assert crl.next_update_utc - crl.last_update_utc <= timedelta(hours=48)
        assert {entry.serial_number for entry in crl} == {int(s, 16) for s in serials[: index + 1]}
    assert numbers == sorted(set(numbers))

    # The daily re-issue keeps counting up, and lists the same revocations.
    clock.advance(hours=24)
    await refresh_crl_if_due(core.db, core.ca, core.settings, clock.now)
    crl = await published_crl(core)
    assert crl_number(crl) > numbers[-1]
    assert len(list(crl)) == len(serials)


# -- the online revocation quota ------------------------------------------------------------


async def test_two_online_revocations_per_year_then_the_branch(core: Core) -> None:
    assert await core.certificates.revocations_left(ALICE) == 2
    first = await issue(core)
    await revoke_online(core, first.record.serial)
    assert await core.certificates.revocations_left(ALICE) == 1
    second = await issue(core)
    await revoke_online(core, second.record.serial)
    assert await core.certificates.revocations_left(ALICE) == 0

    third = await issue(core)
    with pytest.raises(RevocationQuotaExhausted, match="2 online revocations of 2026") as refused:
        await revoke_online(core, third.record.serial)
    assert (refused.value.year, refused.value.limit) == (2026, 2)
    # Nothing of the refused revocation stuck: not revoked, not on the CRL, not audited.
    assert not (await record_of(core, third.record.serial)).revoked
    assert crl_entry(await published_crl(core), third.record.serial) is None
    assert (await audit_actions(core))[-1] == "certificate.issued"

    # The branch (an operator) can still revoke it.
    await core.certificates.revoke(
        third.record.serial, RevocationReason.KEY_COMPROMISE, actor=OPERATOR, online=False
    )
    assert (await record_of(core, third.record.serial)).revoked


async def test_operator_revocations_do_not_count(core: Core) -> None:
    for _ in range(3):
        serial = await holding(core, ALICE)
        await core.certificates.revoke(
            serial, RevocationReason.CESSATION_OF_OPERATION, actor=OPERATOR, online=False
        )
    assert await core.certificates.revocations_left(ALICE) == 2
    await revoke_online(core, await holding(core, ALICE))
    assert await core.certificates.revocations_left(ALICE) == 1


async def test_quota_is_per_customer(core: Core) -> None:
    for _ in range(2):
        await revoke_online(core, await holding(core, ALICE))
    assert await core.certificates.revocations_left(ALICE) == 0
    assert await core.certificates.revocations_left(BOB) == 2
    await revoke_online(core, await holding(core, BOB))
    assert await core.certificates.revocations_left(BOB) == 1


async def test_quota_resets_at_new_year_in_taipei(core: Core, clock: FrozenClock) -> None:
    clock.now = taipei(2026, 12, 31, 23, 0, 0)
    for _ in range(2):
        issued = await issue(core)
        await revoke_online(core, issued.record.serial)
    third = await issue(core)

    clock.now = taipei(2026, 12, 31, 23, 59, 59)  # 15:59:59 UTC: still 2026 in Taipei
    with pytest.raises(RevocationQuotaExhausted):
        await revoke_online(core, third.record.serial)

    clock.advance(seconds=1)  # 2027-01-01 00:00:00 Taipei, 2026-12-31 16:00:00 UTC
    assert await core.certificates.revocations_left(ALICE) == 2
    await revoke_online(core, third.record.serial)
    assert await core.certificates.revocations_left(ALICE) == 1

    async with core.db.read() as conn:
        rows = await conn.execute(
            select(revocation_quota.c.year, revocation_quota.c.used)
            .where(revocation_quota.c.customer_id == ALICE)
            .order_by(revocation_quota.c.year)
        )
        assert [tuple(row) for row in rows] == [(2026, 2), (2027, 1)]


# -- concurrency ----------------------------------------------------------------------------


async def test_two_concurrent_revocations_cannot_both_take_the_last_slot(core: Core) -> None:
    for customer in (ALICE, BOB, CAROL):  # three rounds, three customers
        await revoke_online(core, await holding(core, customer))
        one, other = await holding(core, customer), await holding(core, customer)

        results = await asyncio.gather(
            revoke_online(core, one), revoke_online(core, other), return_exceptions=True
        )

        successes, failures = split_outcomes(results)
        assert len(successes) == 1, results
        assert [type(failure) for failure in failures] == [RevocationQuotaExhausted]
        assert await core.certificates.revocations_left(customer) == 0
        revoked = [record.serial for record in await records_of(core, customer) if record.revoked]
        assert len(revoked) == 2
        assert successes[0].serial in revoked  # type: ignore[attr-defined]


async def test_two_concurrent_first_revocations_with_a_quota_of_one(
    data_dir: Path,
    clock: FrozenClock,
    rng: random.Random,
    environ: dict[str, str],
    database_url: str,
) -> None:
    """The quota row does not exist yet: both revocations try to create it."""
    settings = load_settings(
        environ={}, data_dir=data_dir, revocations_per_year=1, database_url=database_url or None
    )
    core = await Core.open(settings, clock=clock, rng=rng, environ=environ)
    try:
        one, other = await holding(core, ALICE), await holding(core, ALICE)
        results = await asyncio.gather(
            revoke_online(core, one), revoke_online(core, other), return_exceptions=True
        )
        successes, failures = split_outcomes(results)
        assert len(successes) == 1, results
        assert [type(failure) for failure in failures] == [RevocationQuotaExhausted]
        assert await core.certificates.revocations_left(ALICE) == 0
    finally:
        await core.close()


async def test_two_concurrent_issuances_for_one_customer_give_one_certificate(
    core: Core,
) -> None:
    results = await asyncio.gather(issue(core), issue(core), return_exceptions=True)
    successes, failures = split_outcomes(results)
    assert len(successes) == 1, results
    assert [type(failure) for failure in failures] == [ValidCertificateExists]
    records = await records_of(core, ALICE)
    assert [record.serial for record in records] == [successes[0].record.serial]  # type: ignore[attr-defined]
    assert records[0].state is RecordState.ISSUED


async def test_two_instances_keep_the_quota_and_one_certificate_per_customer(
    core: Core, settings: Settings, clock: FrozenClock, environ: dict[str, str]
) -> None:
    """Two processes (two cores, two connection pools) on one database at once: the last
    revocation slot goes to one of them, one of two issuances for a customer wins, and the
    audit chain they write together still verifies."""
    other = await Core.open(settings, clock=clock, rng=random.Random(99), environ=environ)
    try:
        await revoke_online(core, await holding(core, ALICE))
        one, two = await holding(core, ALICE), await holding(core, ALICE)
        results = await asyncio.gather(
            revoke_online(core, one), revoke_online(other, two), return_exceptions=True
        )
        successes, failures = split_outcomes(results)
        assert len(successes) == 1, results
        assert [type(failure) for failure in failures] == [RevocationQuotaExhausted]
        issued = await asyncio.gather(issue(core, BOB), issue(other, BOB), return_exceptions=True)
        successes, failures = split_outcomes(issued)
        assert len(successes) == 1, issued
        assert [type(failure) for failure in failures] == [ValidCertificateExists]
        async with core.db.read() as conn:
            assert await verify_chain(conn) > 0
    finally:
        await other.close()


async def test_concurrent_issuances_for_different_customers_both_succeed(core: Core) -> None:
    alice, bob = await asyncio.gather(issue(core, ALICE), issue(core, BOB))
    assert alice.record.customer_id == ALICE
    assert bob.record.customer_id == BOB
    async with core.db.read() as conn:
        assert await verify_chain(conn) == 4


async def test_the_first_records_of_a_new_database_are_written_at_once(core: Core) -> None:
    """A new database has no audit head and no CRL yet: revocations of several customers at
    the same moment each write the first record and the first CRL, and none fails (on
    PostgreSQL a missing row cannot be locked, so both would insert it)."""
    async with core.db.read() as conn:
        assert await verify_chain(conn) == 0
        assert (await conn.execute(select(crl_state))).first() is None
    customers = (ALICE, BOB, CAROL, DAVE)
    held = [await holding(core, customer) for customer in customers]
    results = await asyncio.gather(
        *(
            core.certificates.revoke(
                serial, RevocationReason.KEY_COMPROMISE, actor=OPERATOR, online=False
            )
            for serial in held
        ),
        return_exceptions=True,
    )
    assert not split_outcomes(results)[1], results
    async with core.db.read() as conn:
        assert await verify_chain(conn) == len(customers)
    crl = await published_crl(core)
    assert {entry.serial_number for entry in crl} == {int(serial, 16) for serial in held}
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == len(customers)


async def test_audit_records_at_once_form_one_chain(core: Core) -> None:
    count = 12
    await asyncio.gather(
        *(
            core.audit.record(OPERATOR, action="test.concurrent", subject=str(n), details={})
            for n in range(count)
        )
    )
    async with core.db.read() as conn:
        assert await verify_chain(conn) == count
        subjects = (await conn.execute(select(audit_log.c.subject))).scalars().all()
    assert sorted(subjects, key=int) == [str(n) for n in range(count)]


async def test_crl_refreshes_at_once_publish_without_error(core: Core) -> None:
    """Several requests for the CRL of a new database (or several instances) at once."""
    ders = await asyncio.gather(*(core.certificates.crl() for _ in range(6)))
    numbers = {
        x509.load_der_x509_crl(der).extensions.get_extension_for_class(x509.CRLNumber).value
        for der in ders
    }
    assert {number.crl_number for number in numbers} <= set(range(1, 7))
    assert await core.certificates.crl_number() == max(n.crl_number for n in numbers)


# -- crash recovery -------------------------------------------------------------------------


async def test_a_crash_between_pending_and_issued_is_recovered(
    core: Core, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    bystander = await issue(core, BOB)

    def crash(*args: object, **kwargs: object) -> x509.Certificate:
        raise RuntimeError("simulated crash while signing")

    async def dead(*args: object, **kwargs: object) -> None:
        """A crashed process does not get to abandon its own record."""

    monkeypatch.setattr(CertificateAuthority, "sign_customer_certificate", crash)
    monkeypatch.setattr(core.certificates, "_abandon", dead)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await issue(core, ALICE)
    monkeypatch.undo()

    [pending] = await records_of(core, ALICE)
    assert pending.state is RecordState.PENDING
    assert pending.der is None
    assert pending.status(clock.now, 30) is None  # never a certificate
    assert (await audit_actions(core))[-1] == "certificate.requested"

    # Until recovery, the pending record holds the customer's slot and is nothing else.
    with pytest.raises(ValidCertificateExists):
        await issue(core, ALICE)
    with pytest.raises(UnknownCertificate):
        await revoke_online(core, pending.serial)
    answer = await ocsp_answer(core, pending.serial)
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN

    # Recovery waits out the delay (10 minutes) so it never races a slow issuance.
    clock.advance(minutes=10)
    assert await core.certificates.recover_pending() == []
    clock.advance(seconds=1)
    assert await core.certificates.recover_pending() == [pending.serial]
    assert await core.certificates.recover_pending() == []

    abandoned = await record_of(core, pending.serial)
    assert abandoned.state is RecordState.ABANDONED
    assert (await record_of(core, bystander.record.serial)).state is RecordState.ISSUED

    async with core.db.read() as conn:
        last = (
            await conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1))
        ).one()
        assert await verify_chain(conn) == last.seq
    assert (last.action, last.actor, last.channel) == (
        "certificate.abandoned",
        "system",
        "recovery",
    )
    assert last.subject == "A123XXX89"
    assert pending.serial in last.details

    answer = await ocsp_answer(core, pending.serial)
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    with pytest.raises(UnknownCertificate):
        await core.certificates.revoke(pending.serial, None, actor=OPERATOR, online=False)

    # The slot is free again.
    issued = await issue(core, ALICE)
    assert issued.record.state is RecordState.ISSUED
    assert [r.state for r in await records_of(core, ALICE)] == [
        RecordState.ABANDONED,
        RecordState.ISSUED,
    ]


async def test_a_failed_issuance_abandons_its_own_record_at_once(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure the process lives through (a setting the encoder refuses, a broken worker)
    frees the customer's slot at once instead of after `serve`'s recovery."""

    async def broken_export(**kwargs: object) -> bytes:
        raise ValueError("the export failed")

    monkeypatch.setattr(core.certificates.keywork, "export_pkcs12", broken_export)
    with pytest.raises(ValueError, match="the export failed"):
        await issue(core, ALICE)
    monkeypatch.undo()

    [record] = await records_of(core, ALICE)
    assert record.state is RecordState.ABANDONED and record.der is None
    async with core.db.read() as conn:
        last = (
            await conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1))
        ).one()
        assert await verify_chain(conn) == last.seq
    assert (last.action, last.actor, last.subject) == (
        "certificate.abandoned",
        CUSTOMER.name,
        "A123XXX89",
    )
    issued = await issue(core, ALICE)  # not "already holds certificate …"
    assert issued.record.state is RecordState.ISSUED


async def test_a_failed_renewal_abandons_its_record_and_keeps_the_old_one(
    core: Core, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = await issue(core, ALICE)
    clock.advance(days=340)

    def refused(*args: object, **kwargs: object) -> x509.Certificate:
        raise ValueError("the encoder refuses a setting")

    monkeypatch.setattr(CertificateAuthority, "sign_customer_certificate", refused)
    with pytest.raises(ValueError):
        await core.certificates.renew(old.record.serial, PASSWORD, actor=OPERATOR)
    monkeypatch.undo()
    states = [(r.serial == old.record.serial, r.state) for r in await records_of(core, ALICE)]
    assert sorted(states) == [(False, RecordState.ABANDONED), (True, RecordState.ISSUED)]
    assert not (await record_of(core, old.record.serial)).revoked
    renewed = await core.certificates.renew(old.record.serial, PASSWORD, actor=OPERATOR)
    assert renewed.record.renewal_of == old.record.serial


async def test_opening_the_core_proves_the_certificate_profile(
    settings: Settings, environ: dict[str, str]
) -> None:
    """What `Settings.validate` cannot see, the encoder refuses when the core opens: here a
    broker name from a non-UTF-8 environment (a surrogate escape)."""
    broken = dataclasses.replace(settings, broker_name="CertDesk \udcff Securities")
    with pytest.raises(ConfigurationError, match="no certificate can be issued") as caught:
        await Core.open(broken, environ=environ)
    assert "\n" not in str(caught.value)
    opened = await Core.open(settings, environ=environ)  # the database was closed, not held
    await opened.close()


async def test_an_issuance_that_outlives_recovery_is_not_released(
    core: Core, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery's verdict is final: a stalled issuance that wakes up after its record was
    abandoned (and the customer may have applied again) must not turn it into a certificate."""
    real_export = core.certificates.keywork.export_pkcs12

    async def stalled_export(**kwargs: object) -> bytes:
        # The export stalls past the recovery delay, and recovery runs meanwhile.
        clock.advance(minutes=11)
        await core.certificates.recover_pending()
        return await real_export(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(core.certificates.keywork, "export_pkcs12", stalled_export)
    with pytest.raises(UnknownCertificate, match="abandoned"):
        await issue(core, ALICE)
    monkeypatch.undo()

    [record] = await records_of(core, ALICE)
    assert record.state is RecordState.ABANDONED
    assert record.der is None
    assert (await audit_actions(core))[-1] == "certificate.abandoned"
    answer = await ocsp_answer(core, record.serial)
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
