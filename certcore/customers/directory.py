"""The customer directory: who may use CertDesk, as the broker's back office says.

The directory is the bot's source of truth for identity checks (ID number + ROC birth date)
and for where one-time codes may go (mobile, e-mail). Field rules live here as pure
functions so the CSV import, the demo set and any later admin tool accept exactly the same
values; the queries take the caller's connection so they run inside its transaction.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.identity import IdKind, normalise_id, taiwan_mobile
from certcore.masking import has_hidden, mask_account, mask_email, mask_id, mask_mobile
from certcore.storage import Database
from certcore.storage.schema import customers as customers_table

#: Longest name the table holds; a longer one is a data error, not something to truncate.
MAX_NAME_LENGTH: Final = 120
MAX_EMAIL_LENGTH: Final = 254
#: Why a name or an e-mail address with a control, bidirectional or zero-width character is
#: refused: shown, it could read other than it is (a right-to-left override, a line break).
HIDDEN_CHARACTERS: Final = "contains control, bidirectional or invisible characters"

_ACCOUNT: Final = re.compile(r"[0-9]{4}-[0-9]{7}")
# Country-code spellings seen in back-office exports (local numbers start with 0).
# SQLite allows 32766 bound parameters; stay far below for any backend.
_LOOKUP_CHUNK: Final = 500


class CustomerKind(StrEnum):
    INDIVIDUAL = "individual"  # 自然人: national ID or resident number
    CORPORATE = "corporate"  # 法人: Unified Business Number


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True, repr=False)
class Customer:
    """One directory entry; values are already normalised (see the functions below).

    Its repr is masked and leaves out name and birth date, because reprs end up in logs
    and tracebacks.
    """

    id_number: str
    kind: CustomerKind
    name: str
    birth_date: date
    """Gregorian; for a corporate customer the company's registration date."""
    mobile: str | None
    """09XXXXXXXX, or None when the back office has no mobile number."""
    email: str | None
    accounts: tuple[str, ...]
    """Securities accounts as BBBB-NNNNNNN (branch, account), in the back office's order."""
    status: CustomerStatus = CustomerStatus.ACTIVE

    @classmethod
    def from_row(cls, row: Row[*tuple[Any, ...]]) -> Customer:
        values = row._mapping
        return cls(
            id_number=values["id_number"],
            kind=CustomerKind(values["kind"]),
            name=values["name"],
            birth_date=values["birth_date"],
            mobile=values["mobile"],
            email=values["email"],
            accounts=tuple(json.loads(values["accounts"])),
            status=CustomerStatus(values["status"]),
        )

    def __repr__(self) -> str:
        return (
            f"Customer(id_number={mask_id(self.id_number)!r}, kind={self.kind.value}, "
            f"mobile={mask_mobile(self.mobile) if self.mobile else None!r}, "
            f"email={mask_email(self.email) if self.email else None!r}, "
            f"accounts={tuple(mask_account(a) for a in self.accounts)!r}, "
            f"status={self.status.value})"
        )

    def same_data(self, other: Customer) -> bool:
        """Equal in everything the back office owns, i.e. everything but `status`."""
        return _data_values(self) == _data_values(other)


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


class InvalidField(ValueError):
    """A field value the directory does not accept.

    The message is the reason only, never the value: it ends up in operator output and logs,
    and the values are personal data.
    """


# -- field rules (pure) ------------------------------------------------------------------


def customer_kind_for(id_kind: IdKind) -> CustomerKind:
    """Which kind of customer an ID number belongs to: a UBN is a company, the rest people."""
    return CustomerKind.CORPORATE if id_kind is IdKind.UBN else CustomerKind.INDIVIDUAL


def normalise_mobile(text: str) -> str:
    """``+886 936-123-054``, ``886936123054`` or ``0936 123 054`` → ``0936123054``.

    Raises InvalidField unless the result is a Taiwanese mobile number: OTP messages go only
    to those, so a landline or a foreign number is a data error worth hearing about.
    """
    digits = taiwan_mobile(text)
    if digits is None:
        raise InvalidField("not a Taiwanese mobile number (09XXXXXXXX or +886 9XXXXXXXX)")
    return digits


def normalise_email(text: str) -> str:
    """A plausible address, with its domain in lower case; raises InvalidField otherwise.

    Deliberately a sanity check (one @, a dotted domain, no spaces), not RFC 5322: the
    real test is whether the code arrives, and a stricter rule only rejects good addresses.
    """
    address = unicodedata.normalize("NFKC", text).strip()
    if has_hidden(address):
        raise InvalidField(HIDDEN_CHARACTERS)
    local, at, domain = address.partition("@")
    if not at or "@" in domain:
        raise InvalidField("must contain exactly one @")
    if any(ch.isspace() for ch in address):
        raise InvalidField("must not contain spaces")
    if not local:
        raise InvalidField("nothing before the @")
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise InvalidField("the domain needs a dot and no empty parts (name@example.com)")
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidField(f"longer than {MAX_EMAIL_LENGTH} characters")
    return f"{local}@{domain.lower()}"


def normalise_account(text: str) -> str:
    """``1020-0324338`` (4-digit branch, 7-digit account); raises InvalidField otherwise."""
    value = unicodedata.normalize("NFKC", text).strip()
    if not _ACCOUNT.fullmatch(value):
        raise InvalidField("not an account number BBBB-NNNNNNN (4-digit branch, 7 digits)")
    return value


def normalise_name(text: str) -> str:
    """The name as given, trimmed; raises InvalidField when empty, too long or garbled."""
    name = unicodedata.normalize("NFC", text).strip()
    if not name:
        raise InvalidField("missing")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidField(f"longer than {MAX_NAME_LENGTH} characters")
    if has_hidden(name):
        raise InvalidField(HIDDEN_CHARACTERS)
    # Private-use characters: nobody else's font can show them, in chat or on a consent screen.
    if any(unicodedata.category(ch) == "Co" for ch in name):
        raise InvalidField("contains private-use (user-defined) characters")
    return name


# -- queries -----------------------------------------------------------------------------


async def get_customer(conn: AsyncConnection, id_number: str) -> Customer | None:
    """The customer with this ID (typed forms such as lower case are folded first)."""
    query = select(customers_table).where(customers_table.c.id_number == normalise_id(id_number))
    row = (await conn.execute(query)).first()
    return Customer.from_row(row) if row else None


async def list_customers(conn: AsyncConnection) -> list[Customer]:
    rows = await conn.execute(select(customers_table).order_by(customers_table.c.id_number))
    return [Customer.from_row(row) for row in rows]


async def count_customers(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(customers_table))).scalar_one()


async def upsert_customers(
    conn: AsyncConnection, customers: Iterable[Customer], now: datetime
) -> ImportSummary:
    """Add new customers and update changed ones, inside the caller's (write) transaction.

    Idempotent: customers equal to what is stored are left alone, `updated_at` included.
    An existing customer's `status` is kept, because suspension is the operator's decision
    and the back office's nightly file must not undo it. Nobody is deleted: a customer
    missing from a file may simply be in another one.
    """
    incoming = list(customers)
    ids = [customer.id_number for customer in incoming]
    if len(set(ids)) != len(ids):
        raise ValueError("the same ID number is given twice")
    stored = await _stored(conn, ids)
    new = [customer for customer in incoming if customer.id_number not in stored]
    changed = [
        customer
        for customer in incoming
        if customer.id_number in stored and not customer.same_data(stored[customer.id_number])
    ]
    if new:
        await conn.execute(
            insert(customers_table),
            [
                {**_data_values(c), "status": c.status.value, "created_at": now, "updated_at": now}
                for c in new
            ],
        )
    if changed:
        # Bind names must differ from column names, hence the "new_" prefix.
        columns = (*_DATA_COLUMNS, "updated_at")
        statement = (
            update(customers_table)
            .where(customers_table.c.id_number == bindparam("key"))
            .values({name: bindparam(f"new_{name}") for name in columns})
        )
        rows = [{**_data_values(c), "updated_at": now} for c in changed]
        await conn.execute(
            statement,
            [
                {"key": row["id_number"], **{f"new_{name}": row[name] for name in columns}}
                for row in rows
            ],
        )
    return ImportSummary(
        added=len(new), updated=len(changed), unchanged=len(incoming) - len(new) - len(changed)
    )


_DATA_COLUMNS: Final = ("kind", "name", "birth_date", "mobile", "email", "accounts")


def _data_values(customer: Customer) -> dict[str, Any]:
    """The stored form of everything but status and timestamps (accounts as JSON text)."""
    return {
        "id_number": customer.id_number,
        "kind": customer.kind.value,
        "name": customer.name,
        "birth_date": customer.birth_date,
        "mobile": customer.mobile,
        "email": customer.email,
        "accounts": json.dumps(list(customer.accounts)),
    }


async def _stored(conn: AsyncConnection, ids: list[str]) -> dict[str, Customer]:
    found: dict[str, Customer] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        rows = await conn.execute(
            select(customers_table).where(customers_table.c.id_number.in_(chunk))
        )
        found.update((row.id_number, Customer.from_row(row)) for row in rows)
    return found


class CustomerDirectory:
    """The directory as a service: what flows and operator tools read about customers."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, id_number: str) -> Customer | None:
        async with self.db.read() as conn:
            return await get_customer(conn, id_number)

    async def all(self) -> list[Customer]:
        async with self.db.read() as conn:
            return await list_customers(conn)
