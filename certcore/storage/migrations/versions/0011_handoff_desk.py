"""The agent desk: how a hand-off ended, its rating, the agent's last reply and last read, the
Telegram support topic; agent sessions and lock-out; private notes; canned replies; the masked
transcript the agents read (what the customer did, who wrote an agent's reply) beside each
event record; and the index the reminder sweep ranges over.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from certcore.storage.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_agent_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("agent_seen_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("topic_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("relayed_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("locked_until", UTCDateTime(), nullable=True))
    with op.batch_alter_table("conversation_events") as batch:
        batch.add_column(sa.Column("said", sa.Text(), nullable=True))
        batch.add_column(sa.Column("author", sa.String(64), nullable=True))
    op.create_index(
        "ix_conversation_events_recent", "conversation_events", ["conversation_id", "received_at"]
    )
    op.create_index("ix_certificates_expiry", "certificates", ["state", "not_after"])
    op.create_table(
        "agent_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent"],
            ["agents.name"],
            name=op.f("fk_agent_sessions_agent_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_agent_sessions")),
    )
    op.create_index("ix_agent_sessions_agent", "agent_sessions", ["agent"])
    op.create_table(
        "handoff_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name=op.f("fk_handoff_notes_handoff_id_handoffs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_notes")),
    )
    op.create_index("ix_handoff_notes_handoff_id", "handoff_notes", ["handoff_id"])
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
        sa.UniqueConstraint("title", name=op.f("uq_canned_replies_title")),
    )


def downgrade() -> None:
    op.drop_table("canned_replies")
    op.drop_index("ix_handoff_notes_handoff_id", table_name="handoff_notes")
    op.drop_table("handoff_notes")
    op.drop_index("ix_agent_sessions_agent", table_name="agent_sessions")
    op.drop_table("agent_sessions")
    op.drop_index("ix_certificates_expiry", table_name="certificates")
    op.drop_index("ix_conversation_events_recent", table_name="conversation_events")
    with op.batch_alter_table("conversation_events") as batch:
        batch.drop_column("author")
        batch.drop_column("said")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("relayed_at")
        batch.drop_column("topic_id")
        batch.drop_column("agent_seen_at")
        batch.drop_column("last_agent_at")
        batch.drop_column("rating")
        batch.drop_column("outcome")
