"""Customer directory, identity lockouts, one-time codes and the development outbox.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from certcore.storage.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id_number", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("mobile", sa.String(16), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("accounts", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_number", name=op.f("pk_customers")),
    )
    op.create_table(
        "identity_lockouts",
        sa.Column("id_number", sa.String(10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_number", name=op.f("pk_identity_lockouts")),
    )
    op.create_table(
        "otp_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(10), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(4), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_otp_codes")),
    )
    op.create_index("ix_otp_codes_sent", "otp_codes", ["customer_id", "created_at"])
    op.create_index(
        "ix_otp_codes_binding",
        "otp_codes",
        ["customer_id", "conversation_id", "operation", "state"],
    )
    op.create_table(
        "dev_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("destination", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dev_outbox")),
    )


def downgrade() -> None:
    op.drop_table("dev_outbox")
    op.drop_index("ix_otp_codes_binding", table_name="otp_codes")
    op.drop_index("ix_otp_codes_sent", table_name="otp_codes")
    op.drop_table("otp_codes")
    op.drop_table("identity_lockouts")
    op.drop_table("customers")
