"""`certdesk audit verify`: walk the audit trail's hash chain."""

from __future__ import annotations

import argparse

from bot.cli.common import Commands, Store, opened, run
from certcore.config import Settings


def register(commands: Commands) -> None:
    audit = commands.group("audit", "the audit trail")
    audit.add("verify", cmd_verify, "verify the hash chain of the audit trail")


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 with the count, or `AuditChainBroken` (exit 1 in `main`) at the first bad one."""

    async def go() -> None:
        async with opened(Store, settings) as store:
            count = await store.audit.verify()
        print(f"audit chain intact: {count} records")

    return run(go())
