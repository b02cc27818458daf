"""Setting a scene for a test: a conversation that already exists and is linked, written the
way a finished linking flow would have left it, without going through the flow."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from certcore.core import Core
from certcore.storage.schema import conversations
from dialogs.conversation import Conversation


async def link_conversation(
    core: Core, conversation_id: str, customer_id: str, locale: str = "zh_TW"
) -> None:
    """The conversation (created if new, in `locale`) is linked to `customer_id`."""
    now = core.clock()
    async with core.db.write() as conn:
        exists = (
            await conn.execute(
                select(conversations.c.id).where(conversations.c.id == conversation_id)
            )
        ).first()
        if exists is None:
            initial = Conversation(conversation_id, locale=locale, last_activity_at=now)
            await conn.execute(
                insert(conversations).values(
                    id=conversation_id, **initial.state_values(), version=1, created_at=now
                )
            )
        await conn.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(customer_id=customer_id, locale=locale, version=conversations.c.version + 1)
        )
