"""A one-time code's and an outbox message's SMS-or-e-mail column is its `medium`: "channel"
means the chat channel (LINE, Telegram, web, console) everywhere else.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("otp_codes", "dev_outbox")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("channel", new_column_name="medium")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("medium", new_column_name="channel")
