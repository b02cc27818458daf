"""The reminder sweep (`bot.reminders`): planned reminders pushed through the channels as REMIND
events, on the frozen clock of the `core` fixture, with a channel that records its pushes.

Certificates made at 10:00 on 24 November 2026 (Taipei) end at 2027-11-24 23:59:59: their
30-day milestone is 2027-10-25 23:59:59, so 336 days on (2027-10-26 10:00) one is due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest
from sqlalchemy import update

from bot.channels import ChannelAdapter, Channels
from bot.reminders import NO_CHAT, NO_REACHABLE_CHAT, reminder_event_id, sweep
from certcore.clock import FrozenClock, taipei
from certcore.core import Core
from certcore.i18n import translate
from certcore.reminders import ReminderState
from certcore.storage.schema import conversations
from dialogs import Choices, EventKind, Inbound, Outbound, Text, engine_for
from tests.certcore.test_service import ALICE, BOB, holding
from tests.dialogs.scene import link_conversation


class Recorder(ChannelAdapter[str]):
    name = "recorded"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sent: list[tuple[str, Outbound]] = []

    def render(self, message: Outbound) -> str:
        return message.text if isinstance(message, Text | Choices) else repr(message)

    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        self.sent.extend((conversation_id, reply) for reply in replies)

    def chats(self) -> list[str]:
        return sorted({chat for chat, _ in self.sent})


@pytest.fixture
def channels(core: Core) -> tuple[Channels, Recorder]:
    engine = engine_for(core)
    channels = Channels(engine)
    recorder = Recorder(engine)
    channels.add(recorder)
    return channels, recorder


def states(rows: Sequence[object]) -> list[tuple[str, str | None]]:
    return [(r.state.value, r.reason) for r in rows]  # type: ignore[attr-defined]


async def test_a_due_reminder_reaches_each_linked_chat_once(
    core: Core, clock: FrozenClock, channels: tuple[Channels, Recorder]
) -> None:
    hub, recorder = channels
    serial = await holding(core, ALICE)
    await link_conversation(core, "recorded:alice", ALICE)
    await link_conversation(core, "recorded:alice-en", ALICE, "en")
    await link_conversation(core, "recorded:bob", BOB)
    clock.advance(days=336)

    done = await sweep(core, hub, clock())
    assert [(r.serial, r.milestone_days) for r in done.planned] == [(serial, 30)]
    assert [(r.serial, chats) for r, chats in done.sent] == [
        (serial, ["recorded:alice", "recorded:alice-en"])
    ]
    assert recorder.chats() == ["recorded:alice", "recorded:alice-en"]
    zh = [recorder.render(reply) for chat, reply in recorder.sent if chat == "recorded:alice"]
    en = [recorder.render(reply) for chat, reply in recorder.sent if chat.endswith("-en")]
    assert "2027-11-24 23:59:59" in zh[0] and zh[1] == translate("zh_TW", "reminder.offer")
    assert en[0].startswith(translate("en", "reminder.expiry").split(":")[0])
    assert states(await core.reminders.listing()) == [("sent", None)]

    # A second sweep, even at the same moment, sends nothing more.
    pushed = len(recorder.sent)
    again = await sweep(core, hub, clock())
    assert (again.planned, again.sent, again.skipped) == ([], [], [])
    assert len(recorder.sent) == pushed


async def test_a_retried_event_is_answered_from_its_record(
    core: Core, clock: FrozenClock, channels: tuple[Channels, Recorder]
) -> None:
    """A crash between pushing and marking: the same event id, the same replies, the chat's
    state untouched (LINE's retry key, derived from this id, drops the repeated push)."""
    hub, _ = channels
    serial = await holding(core, ALICE)
    await link_conversation(core, "recorded:alice", ALICE)
    clock.advance(days=336)
    event = Inbound(
        "recorded:alice",
        reminder_event_id(serial, 30, "recorded:alice"),
        EventKind.REMIND,
        choice=f"{serial}:30",
    )
    first = await hub.dispatch(event)
    before = await core.conversations.find("recorded:alice")
    assert await hub.dispatch(event) == first
    assert await core.conversations.find("recorded:alice") == before
    assert reminder_event_id(serial, 30, "recorded:alice") != reminder_event_id(
        serial, 30, "recorded:bob"
    )
    assert reminder_event_id(serial, 30, "recorded:alice") != reminder_event_id(
        serial, 7, "recorded:alice"
    )


async def test_quiet_hours_defer_until_the_morning(
    core: Core, clock: FrozenClock, channels: tuple[Channels, Recorder]
) -> None:
    hub, recorder = channels
    await holding(core, ALICE)
    await link_conversation(core, "recorded:alice", ALICE)
    night = taipei(2027, 10, 25, 23, 59, 59)
    clock.advance(seconds=(night - clock()).total_seconds())

    done = await sweep(core, hub, night)
    assert len(done.planned) == 1 and done.sent == [] and recorder.sent == []
    assert states(await core.reminders.listing()) == [("pending", None)]
    assert (await sweep(core, hub, taipei(2027, 10, 26, 8, 59))).sent == []

    morning = taipei(2027, 10, 26, 9, 0)
    clock.advance(seconds=(morning - clock()).total_seconds())
    assert len((await sweep(core, hub, morning)).sent) == 1
    assert recorder.chats() == ["recorded:alice"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (None, NO_CHAT),
        ({"reminders": False}, NO_REACHABLE_CHAT),
        ({"following": False}, NO_REACHABLE_CHAT),
        ({"agent_mode": True}, NO_REACHABLE_CHAT),
    ],
)
async def test_unreachable_customers_are_skipped_with_the_reason(
    core: Core,
    clock: FrozenClock,
    channels: tuple[Channels, Recorder],
    change: dict[str, bool] | None,
    reason: str,
) -> None:
    hub, recorder = channels
    await holding(core, ALICE)
    if change is not None:
        await link_conversation(core, "recorded:alice", ALICE)
        async with core.db.write() as conn:
            await conn.execute(
                update(conversations).where(conversations.c.id == "recorded:alice").values(**change)
            )
    else:  # a chat exists, but not linked to Alice
        await link_conversation(core, "recorded:bob", BOB)
    clock.advance(days=336)

    done = await sweep(core, hub, clock())
    assert [why for _, why in done.skipped] == [reason]
    assert recorder.sent == []
    assert states(await core.reminders.listing()) == [("skipped", reason)]


async def test_a_failing_channel_leaves_the_reminder_pending(
    core: Core, clock: FrozenClock, channels: tuple[Channels, Recorder]
) -> None:
    hub, recorder = channels
    await holding(core, ALICE)
    await link_conversation(core, "recorded:alice", ALICE)
    clock.advance(days=336)

    async def broken(conversation_id: str, replies: Sequence[Outbound]) -> None:
        raise ConnectionError("down")

    recorder.send = broken  # type: ignore[method-assign]
    done = await sweep(core, hub, clock())
    assert len(done.retried) == 1
    [row] = await core.reminders.listing()
    assert row.state is ReminderState.PENDING and row.attempts == 1


async def test_two_sweepers_at_once_send_one_reminder(
    core: Core, clock: FrozenClock, channels: tuple[Channels, Recorder]
) -> None:
    """Two instances (or cron beside `serve`) sweeping at the same moment: the plan is made
    once and the claim hands each due reminder to one of them."""
    hub, recorder = channels
    await holding(core, ALICE)
    await link_conversation(core, "recorded:alice", ALICE)
    clock.advance(days=336)

    first, second = await asyncio.gather(sweep(core, hub, clock()), sweep(core, hub, clock()))
    assert len(first.planned) + len(second.planned) == 1
    assert len(first.sent) + len(second.sent) == 1
    assert recorder.chats() == ["recorded:alice"]
    assert len(recorder.sent) == 2  # the reminder and its question, once
    assert states(await core.reminders.listing()) == [("sent", None)]


async def test_the_batch_setting_bounds_each_sweep(
    core: Core, clock: FrozenClock, channels: tuple[Channels, Recorder]
) -> None:
    hub, _ = channels
    for n in range(3):
        await holding(core, ALICE if n % 2 else BOB)
    await link_conversation(core, "recorded:alice", ALICE)
    clock.advance(days=336)
    core.settings = replace(core.settings, reminder_batch=2)
    done = await sweep(core, hub, clock())
    assert len(done.planned) == 2 and len(done.sent) + len(done.skipped) == 2
    assert len((await sweep(core, hub, clock())).planned) == 1
