"""Agent console sessions and the login lock-out over the real database, on the `core`
fixture's frozen clock: tokens stored only as hashes, idle and absolute ends, logout, the lock
after five wrong passwords in a row and its end, and the audit records of each attempt."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.handoff import AgentSessions
from certcore.handoff.agents import LOCK_MINUTES, MAX_FAILED_LOGINS
from certcore.handoff.sessions import ABSOLUTE, IDLE
from certcore.storage.schema import agent_sessions, agents, audit_log

PASSWORD = "correct horse battery"


@pytest.fixture
async def sessions(core: Core) -> AgentSessions:
    await core.agents.add("mei", PASSWORD)
    return AgentSessions(core.db, core.clock, core.agents, core.audit)


async def audit(core: Core) -> list[tuple[str, str, str]]:
    async with core.db.read() as conn:
        rows = await conn.execute(
            select(audit_log.c.action, audit_log.c.subject, audit_log.c.details).order_by(
                audit_log.c.seq
            )
        )
        return [(row.action, row.subject, row.details) for row in rows]


async def test_a_login_stores_only_the_tokens_hash(core: Core, sessions: AgentSessions) -> None:
    result = await sessions.login("mei", PASSWORD, client="web:192.0.2.1")
    assert result.token is not None and result.session is not None
    async with core.db.read() as conn:
        rows = (await conn.execute(select(agent_sessions))).all()
    assert [row.token_hash for row in rows] == [hashlib.sha256(result.token.encode()).hexdigest()]
    assert result.token not in str([tuple(row) for row in rows])
    found = await sessions.find(result.token)
    assert found is not None and found.agent == "mei"
    assert await sessions.find(result.token + "x") is None
    assert await sessions.find("") is None
    (action, subject, details), *_ = await audit(core)
    assert action == "agent.login" and subject == "mei" and "192.0.2.1" in details


async def test_a_session_ends_when_idle_and_at_its_absolute_end(
    core: Core, sessions: AgentSessions, clock: FrozenClock
) -> None:
    idle, _ = await sessions.create("mei")
    clock.advance(seconds=IDLE.total_seconds())
    assert await sessions.find(idle) is None  # not used for IDLE

    token, _ = await sessions.create("mei")
    clock.advance(seconds=IDLE.total_seconds() / 2)
    assert await sessions.find(token) is not None  # used: the idle time starts again
    clock.advance(seconds=IDLE.total_seconds() - 1)
    assert await sessions.find(token) is not None
    clock.advance(seconds=IDLE.total_seconds())
    assert await sessions.find(token) is None

    busy, _ = await sessions.create("mei")
    for _ in range(int(ABSOLUTE / IDLE * 4)):
        clock.advance(seconds=IDLE.total_seconds() / 4)
        if await sessions.find(busy) is None:
            break
    found_late = await sessions.find(busy)
    assert found_late is None  # however busy, not past ABSOLUTE
    assert await sessions.forget_expired() == 3


async def test_logout_and_a_removed_account_end_the_session(
    core: Core, sessions: AgentSessions
) -> None:
    token, _ = await sessions.create("mei")
    assert await sessions.end(token)
    assert await sessions.find(token) is None
    assert not await sessions.end(token)
    assert [action for action, _, _ in await audit(core)] == ["agent.logout"]
    other, _ = await sessions.create("mei")
    assert await core.agents.remove("mei")
    assert await sessions.find(other) is None


async def test_five_wrong_passwords_lock_the_account(
    core: Core, sessions: AgentSessions, clock: FrozenClock
) -> None:
    for attempt in range(1, MAX_FAILED_LOGINS + 1):
        result = await sessions.login("mei", "wrong wrong wrong")
        assert result.token is None
        assert result.check.just_locked == (attempt == MAX_FAILED_LOGINS)
    right = await sessions.login("mei", PASSWORD)
    assert right.token is None and right.check.locked_until is not None
    clock.advance(minutes=LOCK_MINUTES)
    after = await sessions.login("mei", PASSWORD)
    assert after.token is not None
    async with core.db.read() as conn:
        row = (await conn.execute(select(agents).where(agents.c.name == "mei"))).one()
    assert row.failed_logins == 0 and row.locked_until is None
    actions = [action for action, _, _ in await audit(core)]
    assert actions == [
        *["agent.login_failed"] * (MAX_FAILED_LOGINS - 1),
        "agent.locked",
        "agent.login_failed",
        "agent.login",
    ]


async def test_an_unknown_name_is_never_written_down(core: Core, sessions: AgentSessions) -> None:
    result = await sessions.login("hunter2-typed-in-the-wrong-box", "whatever")
    assert result.token is None and not result.check.known
    ((action, subject, details),) = await audit(core)
    assert action == "agent.login_failed" and subject == "-"
    assert "hunter2" not in details
    for _ in range(MAX_FAILED_LOGINS + 1):  # no account, nothing to lock
        assert not (await sessions.login("nobody", "x")).check.just_locked
