"""What the command modules share: the one-line usage error, the exit codes, registering a
command, the opened core (or only its store, when the CA may not exist yet) closed whatever
happens, and the operator as the audit trail names them."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol, Self, TypeVar

from certcore.audit import Actor, AuditLog
from certcore.clock import system_clock
from certcore.config import Settings
from certcore.core import open_database
from certcore.customers import CustomerDirectory
from certcore.errors import InvalidInput
from certcore.identity import classify_id, normalise_id
from certcore.masking import mask_id
from certcore.reminders import ReminderPlanner
from certcore.storage import Database

EXIT_USAGE = 2
EXIT_BROKEN = 1

Handler = Callable[[argparse.Namespace, Settings], int]
"""A command: its parsed arguments and the loaded settings in, its exit code out."""


class Parser(argparse.ArgumentParser):
    """Usage errors too are one line on stderr with exit code 2 (the usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"certdesk: error: {message} (see '{self.prog} --help')\n")


class Commands:
    """One level of `certdesk`'s commands, where a command module registers its own."""

    def __init__(
        self,
        subparsers: argparse._SubParsersAction[Parser],
        options: Parser,
    ) -> None:
        self._subparsers = subparsers
        self._options = options  # --data-dir and --config, which every command takes

    def add(self, name: str, handler: Handler, help_text: str) -> Parser:
        """A command run by `handler`; the caller adds its arguments to the parser returned."""
        parser = self._subparsers.add_parser(
            name, parents=[self._options], help=help_text, description=help_text
        )
        parser.set_defaults(handler=handler)
        return parser

    def group(self, name: str, help_text: str) -> Commands:
        """A command that only holds commands (`certdesk ca …`)."""
        parser = self._subparsers.add_parser(name, help=help_text)
        subparsers = parser.add_subparsers(title=f"{name} commands", metavar="COMMAND")
        return Commands(subparsers, self._options)


def run(command: Coroutine[Any, Any, int | None]) -> int:
    """Run a command's coroutine; what it returns (None for success) is the exit code."""
    return asyncio.run(command) or 0


# -- the opened core ---------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """The part of the core a command may use before there is a CA (or without its
    passphrase): the data directory's database, the customer directory and the audit trail,
    under the names `certcore.core.Core` gives them."""

    db: Database
    customers: CustomerDirectory
    audit: AuditLog
    reminders: ReminderPlanner

    @classmethod
    async def open(cls, settings: Settings) -> Self:
        db = await open_database(settings)
        return cls(
            db=db,
            customers=CustomerDirectory(db),
            audit=AuditLog(db, system_clock),
            reminders=ReminderPlanner(db, settings, system_clock),
        )

    async def close(self) -> None:
        await self.db.close()


class _Opening(Protocol):
    @classmethod
    async def open(cls, settings: Settings) -> Self: ...

    async def close(self) -> None: ...


_Opened = TypeVar("_Opened", bound=_Opening)


@asynccontextmanager
async def opened(kind: type[_Opened], settings: Settings) -> AsyncIterator[_Opened]:
    """`certcore.core.Core` (the CA too) or `Store` (the database only), opened from the
    settings and closed however the block ends."""
    resource = await kind.open(settings)
    try:
        yield resource
    finally:
        await resource.close()


# -- the operator ------------------------------------------------------------------------


def operator() -> Actor:
    """Whoever runs the command, as the audit trail names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"operator:{user}", channel="cli")


async def audit_operator(
    audit: AuditLog, *, action: str, subject: str, details: Mapping[str, Any]
) -> None:
    """One audit record of the operator's action, in a transaction of its own; `subject`
    must already be masked."""
    await audit.record(operator(), action=action, subject=subject, details=details)


async def audit_unmasked(
    audit: AuditLog, what: str, *, subject: str, details: Mapping[str, Any]
) -> None:
    """The record of an `--unmasked` listing (action `{what}.unmasked`), written before
    anything is shown: no full ID number on screen without its audit record."""
    await audit_operator(audit, action=f"{what}.unmasked", subject=subject, details=details)


# -- arguments ---------------------------------------------------------------------------


def checked_id(typed: str, *, option: str | None = None) -> str:
    """The typed ID number or UBN, normalised; InvalidInput (masked) unless it is valid."""
    id_number = normalise_id(typed)
    if classify_id(id_number) is None:
        where = f"{option} " if option else ""
        raise InvalidInput(
            f"{where}{mask_id(id_number)}: not a valid national ID, resident number or "
            "Unified Business Number (checksum or format)"
        )
    return id_number


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
