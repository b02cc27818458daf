"""Hand-off requests and the support agents' accounts.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from certcore.storage.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(160), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("open_key", sa.String(160), nullable=True),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
        sa.UniqueConstraint("open_key", name=op.f("uq_handoffs_open_key")),
    )
    op.create_index("ix_handoffs_queue", "handoffs", ["state", "requested_at"])
    op.create_index("ix_handoffs_conversation_id", "handoffs", ["conversation_id"])
    op.create_table(
        "agents",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.LargeBinary(), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("scrypt_n", sa.Integer(), nullable=False),
        sa.Column("scrypt_r", sa.Integer(), nullable=False),
        sa.Column("scrypt_p", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agents")),
    )


def downgrade() -> None:
    op.drop_table("agents")
    op.drop_index("ix_handoffs_conversation_id", table_name="handoffs")
    op.drop_index("ix_handoffs_queue", table_name="handoffs")
    op.drop_table("handoffs")
