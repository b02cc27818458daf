"""Secrets kept as files in the data directory, readable by the service's user alone."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret with mode 0600 from the first byte on; never over an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_secret(path: Path, *, nbytes: int = 32) -> bytes:
    """The secret in `path`, generated on first use (a single instance's default)."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    with contextlib.suppress(FileExistsError):  # another process was first: use its secret
        write_private(path, secrets.token_hex(nbytes).encode("ascii"))
    return bytes.fromhex(path.read_text().strip())
