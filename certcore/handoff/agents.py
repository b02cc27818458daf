"""Support agents' accounts: a name and a scrypt hash of the password (salt and cost kept with
it, so the cost can be raised for new accounts without breaking old ones). The password itself
is never stored, and a check compares in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from certcore.clock import Clock
from certcore.errors import InvalidInput
from certcore.storage.database import Database
from certcore.storage.schema import agents

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AgentExists(InvalidInput):
    """An account of that name exists already."""


def scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + (1 << 20),
        dklen=HASH_BYTES,
    )


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(
            "an agent's name is 1-64 ASCII letters, digits, '.', '_' or '-' (starting with a "
            "letter or digit)"
        )
    return name


class AgentAccounts:
    def __init__(self, db: Database, clock: Clock, *, n: int = SCRYPT_N) -> None:
        self.db = db
        self.clock = clock
        self.n = n

    async def add(self, name: str, password: str) -> None:
        """A new account; AgentExists for a name taken, InvalidInput for a bad name or a
        password shorter than MIN_PASSWORD characters."""
        check_name(name)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidInput(
                f"an agent's password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
            )
        salt = os.urandom(SALT_BYTES)
        digest = scrypt(password, salt, self.n, SCRYPT_R, SCRYPT_P)
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(agents).values(
                        name=name,
                        password_hash=digest,
                        salt=salt,
                        scrypt_n=self.n,
                        scrypt_r=SCRYPT_R,
                        scrypt_p=SCRYPT_P,
                        created_at=self.clock(),
                    )
                )
        except IntegrityError:
            raise AgentExists(f"an agent named {name} exists already") from None

    async def remove(self, name: str) -> bool:
        """Remove the account; False when there was none of that name."""
        async with self.db.write() as conn:
            result = await conn.execute(delete(agents).where(agents.c.name == name))
        return bool(result.rowcount)

    async def names(self) -> list[str]:
        async with self.db.read() as conn:
            return list(
                (await conn.execute(select(agents.c.name).order_by(agents.c.name))).scalars()
            )

    async def verify(self, name: str, password: str) -> bool:
        """Whether the password is the account's. An unknown name costs the same scrypt, so the
        answer's timing does not tell which names exist."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(agents).where(agents.c.name == name))).first()
        if row is None or len(password) > MAX_PASSWORD:
            scrypt(password[:MAX_PASSWORD], b"\0" * SALT_BYTES, self.n, SCRYPT_R, SCRYPT_P)
            return False
        digest = scrypt(password, row.salt, row.scrypt_n, row.scrypt_r, row.scrypt_p)
        return hmac.compare_digest(digest, row.password_hash)
