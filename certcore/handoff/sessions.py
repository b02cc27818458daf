"""Agent console sessions and the login that opens one.

A session is a random 256-bit token that only the agent's browser holds (in a cookie); the
database keeps its SHA-256, so a copy of the database opens no session. The rows live in the
database rather than in one process's memory, so every instance of the service knows every
session, and ending one (logout, an account removed: the foreign key cascades) ends it
everywhere. A session ends `IDLE` after the agent was last seen, and `ABSOLUTE` after it began
whatever the agent does, so a forgotten browser at the desk does not stay logged in for ever.
`last_seen_at` is written at most once every `TOUCH_EVERY`: the console polls every few seconds,
and a write per poll would be the database's busiest work.

`login` is the one place an agent proves who they are: the account's lock-out
(`AgentAccounts.authenticate`) and the audit trail (success, failure, lock) are kept here, so
nothing in front of it (the web console, any later one) can forget either. The audit record of
a failure names the account only when it exists: a name field may hold a password typed in the
wrong box.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update

from certcore.audit import Actor, AuditLog
from certcore.clock import Clock
from certcore.handoff.agents import AgentAccounts, LoginCheck
from certcore.storage.database import Database
from certcore.storage.schema import agent_sessions

IDLE = timedelta(hours=8)
"""A session not used for a working day ends."""
ABSOLUTE = timedelta(hours=12)
"""No session outlives a long shift, however busy."""
TOUCH_EVERY = timedelta(minutes=1)
TOKEN_BYTES = 32
CHANNEL = "agent_console"
"""The audit trail's word for where an agent logged in."""


def token_digest(token: str) -> str:
    """The stored form of a session token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AgentSession:
    agent: str
    token_hash: str
    """What a per-session value (the console's CSRF token) may be derived from: the stored
    hash, never the token itself."""
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class LoginResult:
    """A session token (for the cookie) when the login succeeded; None otherwise, whatever the
    reason: the person at the form is told no more."""

    token: str | None
    session: AgentSession | None
    check: LoginCheck


class AgentSessions:
    def __init__(
        self, db: Database, clock: Clock, accounts: AgentAccounts, audit: AuditLog
    ) -> None:
        self.db = db
        self.clock = clock
        self.accounts = accounts
        self.audit = audit

    @property
    def lifetime(self) -> timedelta:
        """The longest a session lives (a cookie need not outlive it)."""
        return ABSOLUTE

    async def login(self, name: str, password: str, *, client: str = "") -> LoginResult:
        """Check the password (keeping the lock-out), audit the attempt, and open a session
        when it succeeded. `client` (the browser's address) goes into the audit record."""
        check = await self.accounts.authenticate(name, password)
        actor = Actor(name=f"agent:{name}"[:64] if check.known else "agent:?", channel=CHANNEL)
        subject = name if check.known else "-"
        details: dict[str, object] = {"client": client[:64]} if client else {}
        if check.ok:
            await self.forget_expired()  # cheap, and logins are rare: no separate job needed
            token, session = await self.create(name)
            await self.audit.record(actor, action="agent.login", subject=subject, details=details)
            return LoginResult(token, session, check)
        if check.locked_until is not None:
            details["locked_until"] = check.locked_until.isoformat()
        action = "agent.locked" if check.just_locked else "agent.login_failed"
        if check.locked_until is not None and not check.just_locked:
            details["reason"] = "locked"
        elif check.known:
            details["reason"] = "password"
        else:
            details["reason"] = "unknown_name"
        await self.audit.record(actor, action=action, subject=subject, details=details)
        return LoginResult(None, None, check)

    async def create(self, agent: str) -> tuple[str, AgentSession]:
        """A new session for the agent: the token (only the caller ever has it) and the row."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        session = AgentSession(
            agent=agent,
            token_hash=token_digest(token),
            created_at=now,
            expires_at=now + ABSOLUTE,
            last_seen_at=now,
        )
        async with self.db.write() as conn:
            await conn.execute(
                insert(agent_sessions).values(
                    token_hash=session.token_hash,
                    agent=agent,
                    created_at=now,
                    expires_at=session.expires_at,
                    last_seen_at=now,
                )
            )
        return token, session

    async def find(self, token: str) -> AgentSession | None:
        """The live session of this token (its last use noted), or None: unknown, ended,
        idle for `IDLE`, or past its absolute end."""
        if not token or len(token) > 128:
            return None
        digest = token_digest(token)
        now = self.clock()
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(agent_sessions).where(agent_sessions.c.token_hash == digest)
                )
            ).first()
        if row is None or row.expires_at <= now or row.last_seen_at + IDLE <= now:
            return None
        session = AgentSession(
            agent=row.agent,
            token_hash=row.token_hash,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_seen_at=row.last_seen_at,
        )
        if now - row.last_seen_at >= TOUCH_EVERY:
            async with self.db.write() as conn:
                await conn.execute(
                    update(agent_sessions)
                    .where(agent_sessions.c.token_hash == digest)
                    .values(last_seen_at=now)
                )
            session = AgentSession(**{**session.__dict__, "last_seen_at": now})
        return session

    async def end(self, token: str) -> bool:
        """End the session (logout, audited); False when there was none."""
        digest = token_digest(token)
        async with self.db.write() as conn:
            agent = (
                await conn.execute(
                    select(agent_sessions.c.agent).where(agent_sessions.c.token_hash == digest)
                )
            ).scalar()
            if agent is None:
                return False
            await conn.execute(delete(agent_sessions).where(agent_sessions.c.token_hash == digest))
        actor = Actor(name=f"agent:{agent}"[:64], channel=CHANNEL)
        await self.audit.record(actor, action="agent.logout", subject=agent)
        return True

    async def end_all(self, agent: str) -> int:
        """End every session of the agent (a password changed, a person gone); how many."""
        async with self.db.write() as conn:
            done = await conn.execute(delete(agent_sessions).where(agent_sessions.c.agent == agent))
        return done.rowcount

    async def forget_expired(self) -> int:
        """Drop the sessions that can no longer be used; how many."""
        now = self.clock()
        async with self.db.write() as conn:
            done = await conn.execute(
                delete(agent_sessions).where(
                    or_(
                        agent_sessions.c.expires_at <= now,
                        agent_sessions.c.last_seen_at <= now - IDLE,
                    )
                )
            )
        return done.rowcount
