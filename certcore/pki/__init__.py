"""The certificate authority and everything it makes: customer certificates, their records and
lifecycle rules, the CRL, OCSP answers, PKCS#12 files and their hand-over to the customer.

Callers outside the package import from here (`from certcore.pki import CertificateService`);
the modules inside import each other directly.
"""

from certcore.pki.authority import (
    CertificateAuthority,
    CustomerKey,
    public_key_fingerprint,
    random_serial,
    serial_hex,
)
from certcore.pki.cafiles import CAFiles
from certcore.pki.cakey import signature_hash, wrap_software_key
from certcore.pki.crl import build_crl, refresh_crl_if_due
from certcore.pki.delivery import (
    DeliveredFile,
    Delivery,
    DeliveryService,
    DeliveryState,
    DeliveryTicket,
    DeliveryUnavailable,
    token_hash,
)
from certcore.pki.inspection import (
    MAX_FILE_BYTES,
    FileKind,
    Reading,
    issued_by,
    read_certificate_file,
)
from certcore.pki.issuance import CertificateService, IssuedCertificate
from certcore.pki.keywork import KeyWork, process_pool
from certcore.pki.ocsp import OcspResponder, StatusLookup
from certcore.pki.pkcs12 import (
    EXPORT_PASSWORD,
    EXPORT_PASSWORD_MAX,
    EXPORT_PASSWORD_MIN,
    ClientSystem,
    PasswordProblem,
    Pkcs12Format,
    check_export_password,
    export_password_problem,
    export_pkcs12,
    pfx_filename,
    recommended_format,
)
from certcore.pki.records import (
    CertificateRecord,
    RecordState,
    all_certificates,
    certificates_of,
)
from certcore.pki.rules import (
    CertificateStatus,
    RevocationReason,
    Window,
    add_months,
    certificate_status,
    end_of_day_taipei,
    occupies_holder_slot,
    quota_year,
    renewal_window,
    validity_period,
)

__all__ = [
    "EXPORT_PASSWORD",
    "EXPORT_PASSWORD_MAX",
    "EXPORT_PASSWORD_MIN",
    "MAX_FILE_BYTES",
    "CAFiles",
    "CertificateAuthority",
    "CertificateRecord",
    "CertificateService",
    "CertificateStatus",
    "ClientSystem",
    "CustomerKey",
    "DeliveredFile",
    "Delivery",
    "DeliveryService",
    "DeliveryState",
    "DeliveryTicket",
    "DeliveryUnavailable",
    "FileKind",
    "IssuedCertificate",
    "KeyWork",
    "OcspResponder",
    "PasswordProblem",
    "Pkcs12Format",
    "Reading",
    "RecordState",
    "RevocationReason",
    "StatusLookup",
    "Window",
    "add_months",
    "all_certificates",
    "build_crl",
    "certificate_status",
    "certificates_of",
    "check_export_password",
    "end_of_day_taipei",
    "export_password_problem",
    "export_pkcs12",
    "issued_by",
    "occupies_holder_slot",
    "pfx_filename",
    "process_pool",
    "public_key_fingerprint",
    "quota_year",
    "random_serial",
    "read_certificate_file",
    "recommended_format",
    "refresh_crl_if_due",
    "renewal_window",
    "serial_hex",
    "signature_hash",
    "token_hash",
    "validity_period",
    "wrap_software_key",
]
