"""Identity locks per conversation, per client and per ID number (a day's ceiling), instead of
one lock per ID number that anyone knowing the number could keep closed.

An ID's lock record carries over: its consecutive failures become the failures of a day that
began at its last update.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from certcore.storage.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_locks",
        sa.Column("scope", sa.String(160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", UTCDateTime(), nullable=True),
        sa.Column("window_failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("notified_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_identity_locks")),
    )
    op.create_index("ix_identity_locks_updated_at", "identity_locks", ["updated_at"])
    op.execute(
        "INSERT INTO identity_locks (scope, failures, window_started_at, window_failures,"
        " locked_until, notified_at, updated_at)"
        " SELECT 'id:' || id_number, 0, updated_at, failures, locked_until, NULL, updated_at"
        " FROM identity_lockouts"
    )
    op.drop_table("identity_lockouts")


def downgrade() -> None:
    op.create_table(
        "identity_lockouts",
        sa.Column("id_number", sa.String(10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_number", name=op.f("pk_identity_lockouts")),
    )
    op.execute(
        "INSERT INTO identity_lockouts (id_number, failures, locked_until, updated_at)"
        " SELECT substr(scope, 4), 0, locked_until, updated_at"
        " FROM identity_locks WHERE scope LIKE 'id:%'"
    )
    op.drop_index("ix_identity_locks_updated_at", table_name="identity_locks")
    op.drop_table("identity_locks")
