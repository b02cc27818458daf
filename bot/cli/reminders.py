"""`certdesk reminders list` and `reminders sweep`: the expiry-reminder outbox, for an operator.

Both work through the database alone (`Store`), like `cert list`, so without the CA's
passphrase; ID numbers are masked.

`reminders sweep [--at ISO-8601]` plans, as if it were that time (quiet hours included): every
certificate that has reached a milestone gets its pending reminder, recorded once, and then the
command prints what was planned and what is due to be sent at that time. It pushes nothing: the
chat channels (LINE, Telegram, the web chat) live in `serve`, which sends what is due every few
minutes (`bot.reminders`). Run from cron, it keeps the plan current; with a later `--at` it shows
what that day would send (planning for that day, as a sweep then would).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from bot.cli.common import Commands, Store, opened, run
from certcore.clock import TAIPEI, system_clock
from certcore.config import Settings
from certcore.masking import mask_id
from certcore.reminders import Reminder


def register(commands: Commands) -> None:
    reminders = commands.group("reminders", "expiry reminders")
    listing = reminders.add(
        "list", cmd_list, "list the expiry reminders: pending, sent, and why any was skipped"
    )
    listing.add_argument("--json", action="store_true")
    sweeping = reminders.add(
        "sweep",
        cmd_sweep,
        "plan the reminders reached by now (or --at) and list those due; serve sends them",
    )
    sweeping.add_argument(
        "--at", type=_moment, help="act as if it were this time (ISO 8601; Taipei when no offset)"
    )
    sweeping.add_argument("--limit", type=int, default=1000, help="reminders planned at most")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment.replace(tzinfo=TAIPEI) if moment.tzinfo is None else moment


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        at: datetime = args.at or system_clock()
        async with opened(Store, settings) as store:
            planned = await store.reminders.plan(at, args.limit)
            due = await store.reminders.due(at, args.limit)
        print(f"sweep at {at.astimezone(TAIPEI).isoformat()}: {len(planned)} planned")
        for reminder in planned:
            print("planned  " + _line(_listing(reminder)))
        print(f"{len(due)} due to send now (serve sends them)")
        for reminder in due:
            print("due      " + _line(_listing(reminder)))

    return run(go())


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['serial']:<40}  {row['customer_id']:<10}  {row['milestone_days']:>2}d  "
        f"{row['send_after']}  {row['state']}" + (f" ({row['reason']})" if row["reason"] else "")
    )


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        async with opened(Store, settings) as store:
            rows = [_listing(reminder) for reminder in await store.reminders.listing()]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for row in rows:
            print(_line(row))

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
