"""The slow, CPU-bound half of issuance — customer key generation and PKCS#12 export — off the
event loop.

`cryptography` holds the GIL while it serialises a PKCS#12 file (about 150 ms with 600,000
PBKDF2 rounds), so a thread does not free the event loop: every issuance would freeze a server's
OCSP answers and chat webhooks for that long, and two issuances could not use two cores. Given a
process pool, the work runs in worker processes; without one (operator commands, tests) it runs
in the default thread pool. Either way the same functions run on the same plain bytes.

The customer's private key crosses to and from a worker as unencrypted PKCS#8 over the pool's
local pipe, in memory only; it is never written anywhere unencrypted.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certcore.pki.authority import CustomerKey, generate_customer_key
from certcore.pki.pkcs12 import Pkcs12Format, export_pkcs12


def process_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """Worker processes for `KeyWork`, started with `spawn`: forking a process that runs an
    event loop and database threads is not safe."""
    return ProcessPoolExecutor(
        max_workers=workers or os.cpu_count() or 1,
        mp_context=multiprocessing.get_context("spawn"),
    )


class KeyWork:
    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor
        """None means the event loop's default thread pool."""

    async def generate_key(self, kind: str) -> CustomerKey:
        der = await self._run(_generate_key_der, kind)
        return _load_key(der)

    async def export_pkcs12(
        self,
        *,
        key: CustomerKey,
        certificate: x509.Certificate,
        ca_certificate: x509.Certificate,
        password: str,
        label: str,
        fmt: Pkcs12Format,
        kdf_rounds: int,
    ) -> bytes:
        return await self._run(
            _export_pkcs12_der,
            _key_der(key),
            certificate.public_bytes(serialization.Encoding.DER),
            ca_certificate.public_bytes(serialization.Encoding.DER),
            password,
            label,
            fmt.value,
            kdf_rounds,
        )

    async def _run(self, function: object, *args: object) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, function, *args)  # type: ignore[arg-type]


def _key_der(key: CustomerKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(der: bytes) -> CustomerKey:
    """Load a key this module just generated.

    RSA validation on load costs about 35 ms for a 2048-bit key, twice per issuance; these
    keys come from `generate_customer_key` in our own worker over a local pipe, never from
    outside, so the check would only re-verify OpenSSL's own output.
    """
    return serialization.load_der_private_key(  # type: ignore[return-value]
        der, password=None, unsafe_skip_rsa_key_validation=True
    )


def _generate_key_der(kind: str) -> bytes:
    return _key_der(generate_customer_key(kind))


def _export_pkcs12_der(
    key_der: bytes,
    certificate_der: bytes,
    ca_der: bytes,
    password: str,
    label: str,
    fmt: str,
    kdf_rounds: int,
) -> bytes:
    return export_pkcs12(
        key=_load_key(key_der),
        certificate=x509.load_der_x509_certificate(certificate_der),
        ca_certificate=x509.load_der_x509_certificate(ca_der),
        password=password,
        label=label,
        fmt=Pkcs12Format(fmt),
        kdf_rounds=kdf_rounds,
    )
