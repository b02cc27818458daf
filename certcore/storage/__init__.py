"""The database: one schema and one set of migrations for SQLite (the embedded default) and
PostgreSQL, SQLAlchemy Core over async drivers. Each table's queries live in the module that
owns the table (`certcore.pki.records` for certificates, `certcore.customers.directory` for
customers, …); `schema` is what they all query."""

from certcore.storage import schema
from certcore.storage.accountlinks import AccountLinks
from certcore.storage.chatlog import ChatEntry, ChatLog
from certcore.storage.conversations import EVENT_RECORDS_KEPT, ConversationRecords, TranscriptEntry
from certcore.storage.database import MIGRATIONS_DIR, Database, sqlite_file
from certcore.storage.locks import insert_unless_present, lock_customer, lock_single_row
from certcore.storage.types import UTCDateTime

__all__ = [
    "EVENT_RECORDS_KEPT",
    "MIGRATIONS_DIR",
    "AccountLinks",
    "ChatEntry",
    "ChatLog",
    "ConversationRecords",
    "Database",
    "TranscriptEntry",
    "UTCDateTime",
    "insert_unless_present",
    "lock_customer",
    "lock_single_row",
    "schema",
    "sqlite_file",
]
