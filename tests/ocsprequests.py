"""OCSP requests as a prober writes them, about any serial number, negative ones included.

`cryptography` refuses to build a request about a negative serial, but nothing stops a client
from sending one, so the INTEGER is written into the DER by hand.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp


def request_for_serial(template: bytes, serial: int) -> bytes:
    """`template` (a request without extensions, so its CertID's serial comes last) asking
    about `serial` instead, under the same issuer hashes."""
    asked = ocsp.load_der_ocsp_request(template)
    length = max(1, (serial.bit_length() + 8) // 8)
    placeholder = int.from_bytes(b"\x7f" * length, "big")  # a positive INTEGER as long
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            asked.issuer_name_hash, asked.issuer_key_hash, placeholder, asked.hash_algorithm
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    assert der.endswith(placeholder.to_bytes(length, "big"))
    request = der[:-length] + serial.to_bytes(length, "big", signed=True)
    assert ocsp.load_der_ocsp_request(request).serial_number == serial
    return request
