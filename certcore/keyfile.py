"""Files in the data directory are readable by the service's user alone.

The database holds names, ID numbers, birth dates, phones, e-mail addresses and the kept .pfx;
the key files hold secrets. A data directory created by CertDesk is 0700, but one an operator
made (or an old 0755 one) does not protect them, so every file is created 0600 itself: secrets
by `write_private`, the database and the logs by `keep_private`, and a running `certdesk` command
under `PRIVATE_UMASK`. A directory open to others is pointed out (`open_to_others`), not changed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
"""The umask of a running `certdesk` command: whatever it creates is its user's alone."""


def write_private(path: Path, data: bytes) -> None:
    """Write a secret with mode 0600 from the first byte on; never over an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def keep_private(path: Path, *, create: bool = True) -> None:
    """Make `path` its owner's alone before anything is written into it: created empty with mode
    0600 when missing (unless `create` is false), otherwise stripped of the group's and others'
    permissions (a file an earlier version or another umask created 0644)."""
    if create:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return
        except FileExistsError:
            pass
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def open_to_others(directory: Path) -> int | None:
    """The directory's mode when its group or others have any permission on it, else None."""
    mode = stat.S_IMODE(directory.stat().st_mode)
    return mode if mode & 0o077 else None


def load_or_create_secret(path: Path, *, nbytes: int = 32) -> bytes:
    """The secret in `path`, generated on first use (a single instance's default)."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    with contextlib.suppress(FileExistsError):  # another process was first: use its secret
        write_private(path, secrets.token_hex(nbytes).encode("ascii"))
    return bytes.fromhex(path.read_text().strip())
