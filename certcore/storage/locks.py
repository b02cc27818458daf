"""Per-customer serialisation of write transactions, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.storage.schema import holder_locks


async def lock_customer(conn: AsyncConnection, customer_id: str) -> None:
    """Take the customer's lock row for the rest of the caller's write transaction.

    Everything that decides from a customer's current state what to write (the one valid
    certificate, the revocation quota, the one-time-code send limits) calls this first, so two
    such transactions for one customer run one after the other: PostgreSQL holds the updated
    row's lock until commit, and SQLite's write transactions are serial anyway.
    """
    bump = (
        update(holder_locks)
        .where(holder_locks.c.customer_id == customer_id)
        .values(version=holder_locks.c.version + 1)
    )
    if (await conn.execute(bump)).rowcount:
        return
    try:
        async with conn.begin_nested():
            await conn.execute(insert(holder_locks).values(customer_id=customer_id, version=1))
    except IntegrityError:
        # Another transaction created the row first; bumping it now waits for that one.
        await conn.execute(bump)
