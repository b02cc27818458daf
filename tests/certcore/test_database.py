"""The database handle keeps personal data out of error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from certcore.storage import Database
from certcore.storage.schema import holder_locks


async def test_a_database_error_does_not_carry_the_statements_values(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    await db.migrate()
    try:
        with pytest.raises(IntegrityError) as caught:
            async with db.write() as conn:
                for _ in range(2):
                    await conn.execute(
                        insert(holder_locks).values(customer_id="A123456789", version=1)
                    )
    finally:
        await db.close()
    assert "A123456789" not in str(caught.value)
