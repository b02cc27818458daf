"""`certdesk agents add NAME` and `agents remove NAME`: the support agents' accounts.

The password is typed twice at a prompt (never on the command line, where the process list
shows it) or read from stdin's first line with `--password-stdin`; only its scrypt hash is
stored. Both commands work through the database alone and leave an audit record.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.cli.common import Commands, Store, audit_operator, opened, run
from certcore.clock import system_clock
from certcore.config import Settings
from certcore.errors import InvalidInput
from certcore.handoff import AgentAccounts
from certcore.handoff.agents import check_name


def register(commands: Commands) -> None:
    agents = commands.group("agents", "support agents' accounts for the agent console")
    adding = agents.add("add", cmd_add, "add an agent (the password is asked twice)")
    adding.add_argument("name")
    adding.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    removing = agents.add("remove", cmd_remove, "remove an agent's account")
    removing.add_argument("name")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise InvalidInput("no password: type it at a prompt or give --password-stdin")
    typed = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != typed:
        raise InvalidInput("the two passwords differ; no account was added")
    return typed


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    name = check_name(args.name)
    password = _password(args)

    async def go() -> None:
        async with opened(Store, settings) as store:
            await AgentAccounts(store.db, system_clock).add(name, password)
            await audit_operator(
                store.audit, action="agent.added", subject=f"agent:{name}", details={}
            )
        print(f"agent {name} added")

    return run(go())


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    name: str = args.name

    async def go() -> int:
        async with opened(Store, settings) as store:
            if not await AgentAccounts(store.db, system_clock).remove(name):
                raise InvalidInput(f"no agent named {name}")
            await audit_operator(
                store.audit, action="agent.removed", subject=f"agent:{name}", details={}
            )
        print(f"agent {name} removed")
        return 0

    return run(go())
