"""The development outbox never reuses a message id: it now forgets messages once their codes
expire, and without AUTOINCREMENT SQLite numbers the next message 1 again after the table
empties, so a console following the outbox by id would miss the new codes. PostgreSQL's
serial never goes back, so only SQLite's table is rebuilt.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "dev_outbox", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
