"""`certdesk reminders list`: what the expiry-reminder outbox holds, for an operator.

It reads the outbox through the database alone (`Store`), like `cert list`, so it works
without the CA's passphrase; ID numbers are masked. `reminders sweep` comes with the slice that
sends reminders through the channels.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.cli.common import Commands, Store, opened, run
from certcore.clock import TAIPEI
from certcore.config import Settings
from certcore.masking import mask_id
from certcore.reminders import Reminder


def register(commands: Commands) -> None:
    reminders = commands.group("reminders", "expiry reminders")
    listing = reminders.add(
        "list", cmd_list, "list the expiry reminders: pending, sent, and why any was skipped"
    )
    listing.add_argument("--json", action="store_true")


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        async with opened(Store, settings) as store:
            rows = [_listing(reminder) for reminder in await store.reminders.listing()]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for row in rows:
            print(
                f"{row['serial']:<40}  {row['customer_id']:<10}  {row['milestone_days']:>2}d  "
                f"{row['send_after']}  {row['state']}"
                + (f" ({row['reason']})" if row["reason"] else "")
            )

    return run(go())


def _listing(reminder: Reminder) -> dict[str, Any]:
    return {
        "serial": reminder.serial,
        "customer_id": mask_id(reminder.customer_id),
        "milestone_days": reminder.milestone_days,
        "planned_at": reminder.planned_at.astimezone(TAIPEI).isoformat(),
        "send_after": reminder.send_after.astimezone(TAIPEI).isoformat(),
        "state": reminder.state.value,
        "reason": reminder.reason,
        "attempts": reminder.attempts,
    }
