"""Serialisation of write transactions, on SQLite and PostgreSQL alike: per customer, and on
the single rows (the audit chain's head, the CRL) that every writer of their kind updates.

SQLite runs one write transaction at a time, so reading a row and then writing what follows
from it is safe there. PostgreSQL runs them side by side (READ COMMITTED): a transaction must
lock the row it decides from, and a row that does not exist yet cannot be locked, so two
transactions would both find it missing and both insert it, one failing on the key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

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


def insert_unless_present(conn: AsyncConnection, table: Table) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` in the connection's dialect: a row another transaction
    inserted first (committed, or waited for until it commits) is left as it is."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no INSERT … ON CONFLICT for {conn.dialect.name}")


async def lock_single_row(
    conn: AsyncConnection, table: Table, *, key: dict[str, Any], empty: dict[str, Any]
) -> Row[Any]:
    """Lock the row of `table` with `key` for the rest of the caller's write transaction,
    creating it with the values `empty` first when it is missing; the caller writes its real
    values in the same transaction, so no other transaction ever sees `empty`.

    A second transaction that arrives while the first has created the row waits for it on
    the key and then locks the first one's committed row, instead of failing on the key."""
    where = [table.c[name] == value for name, value in key.items()]
    query = select(table).where(*where).with_for_update()
    row = (await conn.execute(query)).first()
    if row is not None:
        return row
    await conn.execute(insert_unless_present(conn, table).values(**key, **empty))
    row = (await conn.execute(query)).first()
    if row is None:  # the insert above, or the other transaction's, made it
        raise RuntimeError(f"no {table.name} row after inserting it")
    return row
