"""Support agents' accounts: a name and a scrypt hash of the password (salt and cost kept with
it, so the cost can be raised for new accounts without breaking old ones). The password itself
is never stored, and a check compares in constant time.

A login (`authenticate`) also keeps the lock-out: `MAX_FAILED_LOGINS` wrong passwords in a row
lock the account for `LOCK_MINUTES`, during which even the right password is refused. The
counter lives in the account's row, so every instance counts the same failures. A locked
account and an unknown name still cost the whole scrypt, so the time an answer takes tells
neither which names exist nor which are locked; scrypt runs in a worker thread (it releases the
GIL), so the event loop keeps serving while a password is checked."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
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
MAX_FAILED_LOGINS = 5
"""Wrong passwords in a row that lock an account (as DESIGN §3 locks the identity check)."""
LOCK_MINUTES = 15
"""How long a locked account refuses every password, the right one too."""


@dataclass(frozen=True)
class LoginCheck:
    """What one login attempt found. Only `ok` may reach the person logging in: the rest is for
    the audit trail (whether the name exists, whether the account is or just became locked)."""

    ok: bool
    known: bool
    locked_until: datetime | None = None
    """Set when the account refused the attempt because it is locked (before or by it)."""
    just_locked: bool = False
    """This attempt was the `MAX_FAILED_LOGINS`th wrong password in a row."""


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
        """Whether the password is the account's (no lock-out: `authenticate` is the login).
        An unknown name costs the same scrypt, so the answer's timing does not tell which names
        exist."""
        return await self._matches(await self._row(name), password)

    async def authenticate(self, name: str, password: str) -> LoginCheck:
        """A login attempt: the password checked, the lock-out kept. A wrong password counts
        towards the lock; the right one (while not locked) clears the count."""
        row = await self._row(name)
        matches = await self._matches(row, password)  # even when locked: the same time taken
        if row is None:
            return LoginCheck(ok=False, known=False)
        now = self.clock()
        if row.locked_until is not None and row.locked_until > now:
            return LoginCheck(ok=False, known=True, locked_until=row.locked_until)
        if matches:
            if row.failed_logins or row.locked_until is not None:
                async with self.db.write() as conn:
                    await conn.execute(
                        update(agents)
                        .where(agents.c.name == name)
                        .values(failed_logins=0, locked_until=None)
                    )
            return LoginCheck(ok=True, known=True)
        return await self._failed(name, now)

    async def _failed(self, name: str, now: datetime) -> LoginCheck:
        """Count one wrong password (in one transaction, so two instances count both); at the
        limit, lock the account and start the count again for after the lock."""
        async with self.db.write() as conn:
            await conn.execute(
                update(agents)
                .where(agents.c.name == name)
                .values(failed_logins=agents.c.failed_logins + 1, locked_until=None)
            )
            failures = (
                await conn.execute(select(agents.c.failed_logins).where(agents.c.name == name))
            ).scalar()
            if failures is None or failures < MAX_FAILED_LOGINS:
                return LoginCheck(ok=False, known=failures is not None)
            until = now + timedelta(minutes=LOCK_MINUTES)
            await conn.execute(
                update(agents)
                .where(agents.c.name == name)
                .values(failed_logins=0, locked_until=until)
            )
        return LoginCheck(ok=False, known=True, locked_until=until, just_locked=True)

    async def _row(self, name: str) -> Row[Any] | None:
        async with self.db.read() as conn:
            return (await conn.execute(select(agents).where(agents.c.name == name))).first()

    async def _matches(self, row: Row[Any] | None, password: str) -> bool:
        if row is None or len(password) > MAX_PASSWORD:
            await asyncio.to_thread(
                scrypt, password[:MAX_PASSWORD], b"\0" * SALT_BYTES, self.n, SCRYPT_R, SCRYPT_P
            )
            return False
        digest = await asyncio.to_thread(
            scrypt, password, row.salt, row.scrypt_n, row.scrypt_r, row.scrypt_p
        )
        return hmac.compare_digest(digest, row.password_hash)
