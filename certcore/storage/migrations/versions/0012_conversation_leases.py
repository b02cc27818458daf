"""Conversation leases for instances sharing one database (issue 12): an event's unit of work
holds its conversation from the read to the save, so an event at another instance waits for it
instead of being applied over it again (which could repeat a step's side effect, such as
sending a code). Revision 0006 removed the leases of a single process; these are taken only on
the async path that PostgreSQL uses.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from certcore.storage.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
