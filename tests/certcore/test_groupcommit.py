"""The SQLite writer thread and the conversation records on it: a batch commits together, a
failing job undoes only itself, a write's result arrives only once committed, and a save over
a state another process wrote since is refused."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator

import pytest

from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.errors import ConcurrentUpdate
from certcore.storage.conversations import LEASE_SECONDS, ConversationRecords
from certcore.storage.groupcommit import GroupCommitter


@pytest.fixture
async def writer(tmp_path) -> AsyncIterator[GroupCommitter]:
    path = tmp_path / "t.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    committer = GroupCommitter(f"sqlite+aiosqlite:///{path}")
    try:
        yield committer
    finally:
        committer.close()


def _put(key: str, value: int):
    def work(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))
        return key

    return work


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


async def test_waiting_writes_commit_as_one_batch_and_a_failing_one_undoes_only_itself(
    writer: GroupCommitter,
) -> None:
    # Hold the thread on a first job so the others queue up behind it and form one batch.
    release = threading.Event()

    def blocking(conn: sqlite3.Connection) -> None:
        release.wait(10)

    first = asyncio.ensure_future(writer.write(blocking))
    await asyncio.sleep(0.05)
    jobs = [writer.write(_put(f"k{i}", i)) for i in range(5)] + [writer.write(_put("k1", 99))]
    waiting = asyncio.gather(*jobs, return_exceptions=True)
    await asyncio.sleep(0.05)
    release.set()
    await first
    outcomes = await waiting
    assert outcomes[:5] == ["k0", "k1", "k2", "k3", "k4"]
    assert isinstance(outcomes[5], sqlite3.IntegrityError)  # the duplicate key, alone
    assert await writer.read(_count) == 5
    values = await writer.read(lambda conn: conn.execute("SELECT v FROM t WHERE k='k1'").fetchone())
    assert values[0] == 1


async def test_a_write_is_answered_only_after_its_commit(writer: GroupCommitter, tmp_path) -> None:
    await writer.write(_put("a", 1))
    # Another connection (another process) sees it at once: the answer came after COMMIT.
    with sqlite3.connect(tmp_path / "t.sqlite3") as other:
        assert other.execute("SELECT v FROM t WHERE k='a'").fetchone() == (1,)


async def test_close_finishes_the_queued_jobs_then_refuses_new_ones(
    writer: GroupCommitter,
) -> None:
    pending = [asyncio.ensure_future(writer.write(_put(f"q{i}", i))) for i in range(20)]
    await asyncio.sleep(0)
    await asyncio.get_running_loop().run_in_executor(None, writer.close)
    assert [p.result() for p in pending] == [f"q{i}" for i in range(20)]
    with pytest.raises(RuntimeError):
        await writer.read(_count)


async def test_results_reach_the_loop_that_asked(writer: GroupCommitter) -> None:
    """Two event loops (a test's and a worker thread's) share one writer."""

    def other_loop() -> object:
        return asyncio.run(writer.write(_put("from-thread", 7)))

    here, there = await asyncio.gather(
        writer.write(_put("from-loop", 3)),
        asyncio.get_running_loop().run_in_executor(None, other_loop),
    )
    assert (here, there) == ("from-loop", "from-thread")


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "async"])
async def test_a_save_over_a_newer_state_is_refused(
    core: Core, clock: FrozenClock, group_commit: bool
) -> None:
    records = ConversationRecords(core.db, clock, group_commit=group_commit)
    other = ConversationRecords(core.db, clock, group_commit=group_commit)
    values = _values(clock)
    try:
        async with records.turn("web:x", "e1") as turn:
            assert (turn.recorded, turn.values) == (None, None)
            await turn.save(values, replies="[1]", now=clock())
        async with records.turn("web:x", "e2") as mine:
            if not group_commit:  # the lease holds the others off until it lapses (a dead
                clock.advance(seconds=LEASE_SECONDS + 1)  # holder): the version check remains
            async with other.turn("web:x", "e3") as theirs:
                await theirs.save({**values, "seq": 5}, replies="[3]", now=clock())
            with pytest.raises(ConcurrentUpdate):
                await mine.save({**values, "seq": 9}, replies="[2]", now=clock())
        async with records.turn("web:x", "e2") as again:
            assert again.recorded is None  # the refused save recorded nothing
            assert again.values is not None and again.values["seq"] == 5
        async with records.turn("web:x", "e3") as redelivered:
            assert redelivered.recorded == "[3]"
        assert await records.last_replies("web:x") in ("[1]", "[3]")
        found = await records.find("web:x")
        assert found is not None and found["flow_started_at"] is None
        assert found["last_activity_at"] == values["last_activity_at"]
        assert found["following"] is True
    finally:
        records.close()
        other.close()


async def test_two_racing_creations_leave_one_conversation(core: Core, clock: FrozenClock) -> None:
    records = ConversationRecords(core.db, clock)
    other = ConversationRecords(core.db, clock)
    try:
        async with records.turn("web:y", "a") as mine, other.turn("web:y", "b") as theirs:
            await mine.save(_values(clock), replies="[]", now=clock())
            with pytest.raises(ConcurrentUpdate):
                await theirs.save(_values(clock), replies="[]", now=clock())
    finally:
        records.close()
        other.close()


def _values(clock: FrozenClock) -> dict[str, object]:
    return {
        "locale": "zh_TW",
        "customer_id": None,
        "flow": None,
        "step": None,
        "data": "{}",
        "options": "[]",
        "seq": 0,
        "flow_started_at": None,
        "last_activity_at": clock(),
        "reminders": True,
        "agent_mode": False,
        "following": True,
    }


async def test_a_lease_keeps_a_second_instance_waiting_until_the_save(
    core: Core, clock: FrozenClock
) -> None:
    """On the async path (PostgreSQL's), an event of a conversation another instance is working
    on waits for that unit of work to be saved, then reads the state it left: it is never
    applied over the older state and again."""
    records = ConversationRecords(core.db, clock, group_commit=False)
    other = ConversationRecords(core.db, clock, group_commit=False)
    values = _values(clock)
    try:
        async with records.turn("web:z", "e1") as first:
            await first.save(values, replies="[1]", now=clock())
        order: list[str] = []
        read_by_other: list[object] = []

        async def theirs() -> None:
            async with other.turn("web:z", "e3") as turn:
                order.append("other read")
                assert turn.values is not None
                read_by_other.append(turn.values["seq"])
                await turn.save({**values, "seq": 7}, replies="[3]", now=clock())

        async with records.turn("web:z", "e2") as mine:
            waiting = asyncio.create_task(theirs())
            await asyncio.sleep(0.2)  # the other instance polls meanwhile, and waits
            assert order == []
            await mine.save({**values, "seq": 5}, replies="[2]", now=clock())
            order.append("mine saved")
        await waiting
        assert order == ["mine saved", "other read"] and read_by_other == [5]
        found = await records.find("web:z")
        assert found is not None and found["seq"] == 7 and found["lease_owner"] is None
        async with records.turn("web:z", "e3") as redelivered:  # recorded: no lease taken
            assert redelivered.recorded == "[3]" and redelivered.lease is None
    finally:
        records.close()
        other.close()
