"""Certificate deliveries, conversations and processed conversation events.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from certcore.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(10), nullable=False),
        sa.Column("requester", sa.String(160), nullable=False),
        sa.Column("operation", sa.String(8), nullable=False),
        sa.Column("renewal_of", sa.String(40), nullable=True),
        sa.Column("otp_code_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(40), nullable=True),
        sa.Column("filename", sa.String(120), nullable=True),
        sa.Column("pkcs12", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("otp_code_id", name=op.f("uq_deliveries_otp_code_id")),
    )
    op.create_index("ix_deliveries_expires_at", "deliveries", ["state", "expires_at"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(160), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("customer_id", sa.String(10), nullable=True),
        sa.Column("flow", sa.String(32), nullable=True),
        sa.Column("step", sa.String(48), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("flow_started_at", UTCDateTime(), nullable=True),
        sa.Column("last_activity_at", UTCDateTime(), nullable=False),
        sa.Column("reminders", sa.Boolean(), nullable=False),
        sa.Column("agent_mode", sa.Boolean(), nullable=False),
        sa.Column("following", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index("ix_conversations_customer_id", "conversations", ["customer_id"])
    op.create_table(
        "conversation_events",
        sa.Column("conversation_id", sa.String(160), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("replies", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "event_id", name=op.f("pk_conversation_events")),
    )


def downgrade() -> None:
    op.drop_table("conversation_events")
    op.drop_index("ix_conversations_customer_id", table_name="conversations")
    op.drop_table("conversations")
    op.drop_index("ix_deliveries_expires_at", table_name="deliveries")
    op.drop_table("deliveries")
