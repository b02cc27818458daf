"""LINE Account Link nonces: who passed the identity check on CertDesk's linking page.

The page makes a nonce (128 random bits and more) once the customer has typed their ID number,
birth date and one-time code there; LINE hands it back in the `accountLink` event of the user
who opened the page, and that event links the user's chat to the customer. Only the nonce's
SHA-256 is stored, so a copy of the database cannot link anyone; a nonce is good once
(`used_at`) and only until it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import insert, select, update

from certcore.clock import Clock
from certcore.storage.database import Database
from certcore.storage.schema import account_links

NONCE_BYTES = 24
"""192 bits, URL-safe base64 (32 characters); LINE accepts 10 to 255 characters."""
LIFETIME = timedelta(minutes=10)


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


class AccountLinks:
    def __init__(self, db: Database, clock: Clock, lifetime: timedelta = LIFETIME) -> None:
        self.db = db
        self.clock = clock
        self.lifetime = lifetime

    async def create(self, customer_id: str) -> str:
        """A fresh nonce for this customer; the caller hands it to LINE, never stores it."""
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        now = self.clock()
        async with self.db.write() as conn:
            await conn.execute(
                insert(account_links).values(
                    nonce_hash=nonce_hash(nonce),
                    customer_id=customer_id,
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return nonce

    async def redeem(self, nonce: str) -> str | None:
        """The customer of an unused, unexpired nonce, marking it used; None otherwise (an
        unknown, spent or expired nonce)."""
        if not nonce:
            return None
        key = nonce_hash(nonce)
        async with self.db.write() as conn:
            now = self.clock()
            row = (
                await conn.execute(
                    select(account_links.c.customer_id).where(
                        account_links.c.nonce_hash == key,
                        account_links.c.used_at.is_(None),
                        account_links.c.expires_at > now,
                    )
                )
            ).first()
            if row is None:
                return None
            spent = await conn.execute(
                update(account_links)
                .where(account_links.c.nonce_hash == key, account_links.c.used_at.is_(None))
                .values(used_at=now)
            )
            if spent.rowcount != 1:  # another process redeemed it between the two statements
                return None
            return str(row.customer_id)
