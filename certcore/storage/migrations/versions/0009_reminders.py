"""The expiry-reminder outbox: one row per (certificate, milestone).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from certcore.storage.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminder_outbox",
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("milestone_days", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.String(10), nullable=False),
        sa.Column("planned_at", UTCDateTime(), nullable=False),
        sa.Column("send_after", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["serial"],
            ["certificates.serial"],
            name=op.f("fk_reminder_outbox_serial_certificates"),
        ),
        sa.PrimaryKeyConstraint("serial", "milestone_days", name=op.f("pk_reminder_outbox")),
    )
    op.create_index("ix_reminder_outbox_due", "reminder_outbox", ["state", "send_after"])


def downgrade() -> None:
    op.drop_index("ix_reminder_outbox_due", table_name="reminder_outbox")
    op.drop_table("reminder_outbox")
