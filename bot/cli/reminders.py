"""`certdesk reminders list` and `reminders sweep`: the expiry-reminder outbox, for an operator.

Both work through the database alone (`Store`), like `cert list`, so without the CA's
passphrase; ID numbers are masked.

`reminders sweep` plans as a sweep now would: every certificate that has reached a milestone gets
its pending reminder, recorded once, and the command prints what was planned and what is due to
be sent. It pushes nothing: the chat channels (LINE, Telegram, the web chat) and the e-mail
sender live in `serve`, which sends what is due every `reminder_sweep_seconds`. Run from cron,
it keeps the plan current.

`--at` a time to come is a dry run: it shows what a sweep at that time would plan and send
(quiet hours included), and records nothing, since a reminder planned for a later day now would
be sent by the next real sweep, a day (or a month) early. A past `--at`, or now, acts as now:
the outbox is kept for the present, not rewritten for a past that has gone by.
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
        "plan the reminders reached by now and list those due (serve sends them); a later --at "
        "shows what that time would send, recording nothing",
    )
    sweeping.add_argument(
        "--at",
        type=_moment,
        help="a dry run as if it were this later time (ISO 8601; Taipei when no offset)",
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
        now = system_clock()
        at: datetime = args.at if args.at is not None and args.at > now else now
        async with opened(Store, settings) as store:
            if at > now:
                planned, due = await store.reminders.preview(at, args.limit)
            else:
                planned = await store.reminders.plan(at, args.limit)
                due = await store.reminders.due(at, args.limit)
        when = at.astimezone(TAIPEI).isoformat()
        if at > now:
            print(f"dry run: a sweep at {when} would plan {len(planned)}; nothing is recorded")
        else:
            print(f"sweep at {when}: {len(planned)} planned")
        for reminder in planned:
            print("planned  " + _line(_listing(reminder)))
        print(f"{len(due)} due to send {'then' if at > now else 'now'} (serve sends them)")
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
