"""A database that stops answering: one error for it whatever the driver said, the outage
remembered until a ping is answered, and an engine that waits it out and applies the event
once when the database is back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from certcore.core import Core
from certcore.errors import DatabaseUnavailable
from dialogs import EventKind, Inbound, engine_for


class Stopped:
    """An engine whose connections are refused, as a stopped server's are."""

    def connect(self) -> Any:
        raise OperationalError("connect", {}, ConnectionRefusedError("refused"))


async def test_an_unreachable_database_is_one_error_and_remembered(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as stopped:
        stopped.setattr(core.db, "engine", Stopped())
        with pytest.raises(DatabaseUnavailable):
            async with core.db.read() as conn:
                await conn.execute(text("SELECT 1"))
        assert not core.db.reachable
        with pytest.raises(DatabaseUnavailable):
            await core.db.ping()
        assert not core.db.reachable
    await core.db.ping()  # the server is back
    assert core.db.reachable


async def test_a_broken_rule_is_not_an_outage(core: Core) -> None:
    with pytest.raises(IntegrityError):
        async with core.db.write() as conn:
            await conn.execute(text("INSERT INTO agents (name) VALUES (NULL)"))
    assert core.db.reachable


@pytest.fixture
async def conversation(core: Core) -> AsyncIterator[str]:
    yield "web:outage"


async def test_the_engine_waits_out_an_outage_and_applies_the_event_once(
    core: Core, monkeypatch: pytest.MonkeyPatch, conversation: str
) -> None:
    engine = engine_for(core)
    records = engine.services.conversations
    real_turn = records.turn
    failures = {"left": 2}

    def turn(conversation_id: str, event_id: str) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            core.db.outage_since = time.monotonic()
            raise DatabaseUnavailable("the database does not answer (test)")
        return real_turn(conversation_id, event_id)

    monkeypatch.setattr(records, "turn", turn)
    pauses: list[float] = []

    async def no_sleep(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr("dialogs.engine.asyncio.sleep", no_sleep)
    replies = await engine.handle(Inbound(conversation, "e1", EventKind.TEXT, text="選單"))
    assert replies and pauses == [0.5, 1.0]
    again = await engine.handle(Inbound(conversation, "e1", EventKind.TEXT, text="選單"))
    assert again == replies  # saved once: the same event is answered from its record


async def test_the_engine_gives_up_after_its_wait(
    core: Core, monkeypatch: pytest.MonkeyPatch, conversation: str
) -> None:
    engine = engine_for(core)
    engine.outage_wait = 2.0

    def turn(conversation_id: str, event_id: str) -> Any:
        raise DatabaseUnavailable("the database does not answer (test)")

    monkeypatch.setattr(engine.services.conversations, "turn", turn)

    async def no_sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr("dialogs.engine.asyncio.sleep", no_sleep)
    with pytest.raises(DatabaseUnavailable):
        await engine.handle(Inbound(conversation, "e2", EventKind.TEXT, text="選單"))
