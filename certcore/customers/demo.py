"""The fictional demo customers that the embedded default (`serve` in dev mode) starts with.

They cover every case a flow has to handle: each kind of ID number, a corporate customer with
a 7-digit registration date, several accounts, only a mobile or only an e-mail, a check digit
of 0, a suspended customer. Names are obviously made up, addresses are at example.com and
example.org, and every ID passes its checksum (a test checks that the import would accept
each one). 王三 is the customer of the user manual's screenshots (A120XXX53, 761205).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.audit import Actor, AuditTrail
from certcore.customers.directory import (
    Customer,
    CustomerKind,
    CustomerStatus,
    ImportSummary,
    count_customers,
    upsert_customers,
)
from certcore.storage import Database

AUDIT_ACTION: Final = "customers.demo_loaded"


def _customer(
    id_number: str,
    kind: CustomerKind,
    name: str,
    born: date,
    mobile: str | None,
    email: str | None,
    *accounts: str,
    status: CustomerStatus = CustomerStatus.ACTIVE,
) -> Customer:
    return Customer(id_number, kind, name, born, mobile, email, accounts, status)


_I, _C = CustomerKind.INDIVIDUAL, CustomerKind.CORPORATE

_DEMO: Final = (
    # The manual's example customer: masked A120XXX53, born 民國76年12月5日.
    _customer("A120786753", _I, "王三", date(1987, 12, 5), "0936123054",
              "wang.san@example.com", "1020-0324338"),
    _customer("A123456789", _I, "王小明", date(1991, 1, 1), "0900000001",
              "xiaoming.wang@example.com", "1020-0000001"),
    _customer("F223456786", _I, "陳美玲", date(1996, 3, 15), "0900000002",
              "meiling.chen@example.org", "5810-0000002"),
    # Two accounts: the apply flow asks which one.
    _customer("H120000013", _I, "林志豪", date(1979, 9, 20), "0900000003",
              "zhihao.lin@example.com", "1020-1234567", "5810-7654321"),
    # Only a mobile number: codes can go by SMS only.
    _customer("E200000025", _I, "張雅婷", date(2001, 7, 4), "0900000004", None,
              "5810-0000004"),
    # Only an e-mail address: codes can go by e-mail only.
    _customer("N123456780", _I, "李建國", date(1966, 2, 28), None,
              "jianguo.li@example.org", "1020-0000005"),
    # A check digit of 0 (DESIGN §6).
    _customer("M162773050", _I, "周俊傑", date(1984, 10, 10), "0900000006",
              "junjie.zhou@example.com", "1020-0000006"),
    # New-form resident number (second character 8 or 9).
    _customer("A800000014", _I, "Alex Example", date(1999, 8, 8), "0900000007",
              "alex@example.com", "1020-0000007"),
    # Old-form resident number (second letter A-D), valid until 2030-12-31.
    _customer("AC00000129", _I, "Maria Example", date(1981, 1, 1), "0900000008",
              "maria@example.org", "5810-0000008"),
    # Registered 民國112年3月15日, a 7-digit ROC date; the UBN is valid only through the
    # 7th-digit-7 rule.
    _customer("12345675", _C, "範例科技股份有限公司", date(2023, 3, 15), "0900000009",
              "it@example.com", "1020-8000001", "1020-8000002"),
    # Registered 民國88年, a 6-digit date; the UBN is valid only under the 2023 rule (mod 5).
    _customer("00112233", _C, "示範投資有限公司", date(1999, 6, 30), None,
              "finance@example.org", "5810-8000003"),
    # Suspended by an operator: identity checks must not let this customer through.
    _customer("D220001232", _I, "吳佩君", date(1989, 11, 11), "0900000010",
              "peijun.wu@example.com", "1020-0000010", status=CustomerStatus.SUSPENDED),
)  # fmt: skip


def demo_customers() -> list[Customer]:
    """The demo set, in a stable order (a new list; the customers are immutable)."""
    return list(_DEMO)


async def load_demo_customers(db: Database, now: datetime) -> int:
    """Insert the demo set if the directory is empty; how many were inserted (0 otherwise).

    For `serve`'s first start in dev mode: a directory that already holds anyone, demo or
    imported, is left exactly as it is. The check and the insert share one transaction, so
    two instances starting together cannot both load.
    """
    async with db.write() as conn:
        if await count_customers(conn):
            return 0
        summary = await upsert_customers(conn, demo_customers(), now)
        await _audit(conn, now, summary, actor=Actor("system", "serve"))
    return summary.added


async def upsert_demo_customers(db: Database, now: datetime, *, actor: Actor) -> ImportSummary:
    """Add or restore the demo set whatever else the directory holds (`customers demo`)."""
    async with db.write() as conn:
        summary = await upsert_customers(conn, demo_customers(), now)
        await _audit(conn, now, summary, actor=actor)
    return summary


async def _audit(
    conn: AsyncConnection, now: datetime, summary: ImportSummary, *, actor: Actor
) -> None:
    await AuditTrail(lambda: now).append(
        conn,
        actor,
        action=AUDIT_ACTION,
        subject="customers",
        details={
            "added": summary.added,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
        },
    )
