"""The database schema, written once for SQLite and PostgreSQL (SQLAlchemy Core).

Migrations in `certcore/storage/migrations` create exactly these tables; a test compares the
two so they cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from certcore.storage.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

certificates = Table(
    "certificates",
    metadata,
    Column("serial", String(40), primary_key=True),
    # Upper-case hex of the certificate serial number.
    Column("customer_id", String(10), nullable=False),
    Column("state", String(12), nullable=False),
    # pending (recorded, not yet signed) | issued | abandoned (never signed or never released).
    Column("not_before", UTCDateTime(), nullable=False),
    Column("not_after", UTCDateTime(), nullable=False),
    Column("public_key_sha256", String(64), nullable=False),
    Column("der", LargeBinary, nullable=True),
    Column("renewal_of", String(40), ForeignKey("certificates.serial"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("revoked_reason", String(32), nullable=True),
    Index(None, "customer_id"),
    Index(None, "state", "created_at"),
    Index("ix_certificates_expiry", "state", "not_after"),
    # the reminder sweep's range over issued certificates by expiry
)

holder_locks = Table(
    "holder_locks",
    metadata,
    Column("customer_id", String(10), primary_key=True),
    Column("version", Integer, nullable=False),
)
"""One row per certificate holder, updated first in every transaction that changes what the
holder owns, so two such transactions for one customer run one after the other on any backend
(the row lock in PostgreSQL, the database write lock in SQLite)."""

revocation_quota = Table(
    "revocation_quota",
    metadata,
    Column("customer_id", String(10), primary_key=True),
    Column("year", Integer, primary_key=True),
    # Calendar year in Asia/Taipei.
    Column("used", Integer, nullable=False),
)

crl_state = Table(
    "crl_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("crl_number", Integer, nullable=False),
    Column("this_update", UTCDateTime(), nullable=False),
    Column("next_update", UTCDateTime(), nullable=False),
    Column("der", LargeBinary, nullable=False),
)
"""A single row (id = 1): the newest CRL, shared by every instance."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    # ISO 8601 UTC, kept as text so the hashed form is the stored form.
    Column("actor", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(64), nullable=False),
    # Masked: an ID shown as A120XXX53, never in full.
    Column("details", Text, nullable=False),
    # Canonical JSON; never a secret.
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)
"""A single row (id = 1): the last record of the chain, so cutting records off the end shows."""


customers = Table(
    "customers",
    metadata,
    Column("id_number", String(10), primary_key=True),
    Column("kind", String(12), nullable=False),
    # individual (自然人) | corporate (法人)
    Column("name", String(120), nullable=False),
    Column("birth_date", Date, nullable=False),
    # Gregorian; a corporate customer's registration date
    Column("mobile", String(16), nullable=True),
    # normalised to 09XXXXXXXX
    Column("email", String(254), nullable=True),
    Column("accounts", Text, nullable=False),
    # JSON array of "BBBB-NNNNNNN"
    Column("status", String(12), nullable=False),
    # active | suspended
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

identity_locks = Table(
    "identity_locks",
    metadata,
    Column("scope", String(160), primary_key=True),
    # what is counted: `chat:<conversation>`, `client:<client>`, or `id:<ID number>` (the ID
    # that was typed, checksum-valid, known to the directory or not)
    Column("failures", Integer, nullable=False),
    # consecutive failures since the last success or lock (a conversation's, a client's)
    Column("window_started_at", UTCDateTime(), nullable=True),
    Column("window_failures", Integer, nullable=False),
    # failures in the day that began at window_started_at
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("notified_at", UTCDateTime(), nullable=True),
    # an ID's: when its owner was last told that it is being guessed
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_identity_locks_updated_at", "updated_at"),
)

otp_codes = Table(
    "otp_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(10), nullable=False),
    Column("conversation_id", String(128), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("medium", String(8), nullable=False),
    # sms | email
    Column("destination", String(64), nullable=False),
    # masked, as shown to the customer
    Column("prefix", String(4), nullable=False),
    Column("code_hash", String(64), nullable=False),
    # HMAC-SHA256 under the OTP key; the code itself is never stored
    Column("state", String(12), nullable=False),
    # active | used | superseded | voided | expired
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime(), nullable=True),
    Index("ix_otp_codes_sent", "customer_id", "created_at"),
    Index("ix_otp_codes_binding", "customer_id", "conversation_id", "operation", "state"),
)

dev_outbox = Table(
    "dev_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("medium", String(8), nullable=False),
    Column("destination", String(254), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    sqlite_autoincrement=True,
)
"""Development mode only (no SMTP or SMS configured): the messages that would have been sent,
for the dev pages and the console. `serve` refuses non-loopback addresses in this mode.
Messages are forgotten once their codes expire; AUTOINCREMENT keeps their ids from being
reused, as the console follows the outbox by id."""


deliveries = Table(
    "deliveries",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # SHA-256 of the one-time link's token; the token itself is only in the link
    Column("customer_id", String(10), nullable=False),
    Column("requester", String(160), nullable=False),
    # opaque to certcore: the conversation that asked, to confirm the download to
    Column("operation", String(8), nullable=False),
    # apply | renew
    Column("renewal_of", String(40), nullable=True),
    Column("otp_code_id", Integer, nullable=False, unique=True),
    # the verified one-time code this delivery spent; one code opens one delivery
    Column("state", String(10), nullable=False),
    # open | issued | expired
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("downloads", Integer, nullable=False),
    Column("serial", String(40), nullable=True),
    Column("filename", String(120), nullable=True),
    Column("pkcs12", LargeBinary, nullable=True),
    # encrypted by the customer's export password; erased when the delivery window ends
    Index("ix_deliveries_expires_at", "state", "expires_at"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(160), primary_key=True),
    # channel-qualified: line:U…, telegram:…, web:…, console:…
    Column("locale", String(8), nullable=False),
    Column("customer_id", String(10), nullable=True),
    # the linked customer (first contact and linking); NULL when unlinked (登出)
    Column("flow", String(32), nullable=True),
    Column("step", String(48), nullable=True),
    Column("data", Text, nullable=False),
    # JSON: the flow's own values; never a code, password or key
    Column("options", Text, nullable=False),
    # JSON: the options of the question being asked, for typed labels and numbers
    Column("seq", Integer, nullable=False),
    # bumps with every question; stale buttons carry an older number
    Column("flow_started_at", UTCDateTime(), nullable=True),
    Column("last_activity_at", UTCDateTime(), nullable=False),
    Column("reminders", Boolean, nullable=False),
    Column("agent_mode", Boolean, nullable=False),
    Column("following", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    # bumps with every event saved: a save over a state another process wrote since is refused
    Column("created_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    # the unit of work (on the async path: several instances) holding the conversation from
    # its read to its save; a lease past `lease_until` belonged to a process that died
    Index("ix_conversations_customer_id", "customer_id"),
)

conversation_events = Table(
    "conversation_events",
    metadata,
    Column("conversation_id", String(160), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("replies", Text, nullable=False),
    # JSON of the outbound messages, so a redelivered event gets the same answer
    Column("said", Text, nullable=True),
    # what the customer did, for the agents' transcript, masked (no code, password or full ID
    # number ever): the words typed, the option tapped; NULL for events not the customer's
    Column("author", String(64), nullable=True),
    # the agent whose reply this event carried (`replies` holds it); NULL otherwise
    Index("ix_conversation_events_recent", "conversation_id", "received_at"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("conversation_id", String(160), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    # 1, 2, 3 … per conversation: the web chat asks for the messages after the last it showed
    Column("created_at", UTCDateTime(), nullable=False),
    Column("message", Text, nullable=False),
    # JSON of one message shown in the web chat; a secret in it (a download link) is sealed
    # with a key only the session's holder has
    Index("ix_chat_messages_created_at", "created_at"),
)
"""The web chat's own history, so a page reload (or another instance) shows the conversation."""

account_links = Table(
    "account_links",
    metadata,
    Column("nonce_hash", String(64), primary_key=True),
    # SHA-256 of the nonce handed to LINE's Account Link; the nonce itself is never stored
    Column("customer_id", String(10), nullable=False),
    # who passed the identity check on CertDesk's linking page
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
)
"""LINE Account Link: the nonce that LINE's `accountLink` event brings back, to its customer."""

reminder_outbox = Table(
    "reminder_outbox",
    metadata,
    Column("serial", String(40), ForeignKey("certificates.serial"), primary_key=True),
    Column("milestone_days", Integer, primary_key=True, autoincrement=False),
    # the key is the "exactly once": a second planner's insert of the same pair does nothing
    Column("customer_id", String(10), nullable=False),
    Column("planned_at", UTCDateTime(), nullable=False),
    Column("send_after", UTCDateTime(), nullable=False),
    # the planning moment, or the end of the quiet hours it fell in
    Column("state", String(8), nullable=False),
    # pending | sent | skipped
    Column("reason", String(64), nullable=True),
    # why it was skipped (e.g. no reachable chat); never personal data
    Column("attempts", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_reminder_outbox_due", "state", "send_after"),
)
"""Expiry reminders decided on, one row per (certificate, milestone), written in the same
transaction that decides them so a crash or a second instance cannot plan one twice."""

handoffs = Table(
    "handoffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(160), nullable=False),
    Column("reason", String(16), nullable=False),
    # asked | misunderstood | quota | identity_lock
    Column("state", String(10), nullable=False),
    # waiting | active | closed | cancelled
    Column("open_key", String(160), nullable=True, unique=True),
    # the conversation id while the request is waiting or active, NULL once it ends: at most
    # one open request per conversation, kept by the database (NULLs never collide)
    Column("agent", String(64), nullable=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("outcome", String(16), nullable=True),
    # how it ended: cancelled | returned (to the bot by the agent) | resolved | timed_out
    Column("rating", Integer, nullable=True),
    # 1–5, the customer's rating of a resolved hand-off, if given
    Column("last_agent_at", UTCDateTime(), nullable=True),
    # the agent's last reply: no reply for `handoff_timeout_minutes` returns it to the bot
    Column("agent_seen_at", UTCDateTime(), nullable=True),
    # when the agent last read the transcript: later customer messages are unread
    Column("topic_id", BigInteger, nullable=True),
    # the Telegram support group's forum topic (message_thread_id) for this hand-off
    Column("relayed_at", UTCDateTime(), nullable=True),
    # the customer's messages up to here have been copied to the support group's topic
    Index("ix_handoffs_queue", "state", "requested_at"),
    Index("ix_handoffs_conversation_id", "conversation_id"),
)
"""Hand-off requests: a conversation handed to a person, why, and how far it got."""

agents = Table(
    "agents",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", LargeBinary, nullable=False),
    # scrypt of the password with the salt and cost below; never the password
    Column("salt", LargeBinary, nullable=False),
    Column("scrypt_n", Integer, nullable=False),
    Column("scrypt_r", Integer, nullable=False),
    Column("scrypt_p", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    # wrong passwords in a row; reaching the limit locks the account
    Column("locked_until", UTCDateTime(), nullable=True),
)
"""Support agents' accounts for the agent console (`certdesk agents add`)."""

agent_sessions = Table(
    "agent_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # SHA-256 of the session cookie's value; the value itself is never stored
    Column("agent", String(64), ForeignKey("agents.name", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Index("ix_agent_sessions_agent", "agent"),
)
"""Agent console sessions, in the database so every instance knows them."""

handoff_notes = Table(
    "handoff_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("handoff_id", Integer, ForeignKey("handoffs.id"), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_handoff_notes_handoff_id", "handoff_id"),
)
"""Private notes on a hand-off: only agents see them, never the customer."""

canned_replies = Table(
    "canned_replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(80), nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
"""The support team's canned replies, shared by every agent."""
