"""The engine alone: events per second through `Engine.handle` over SQLite, against the storage
floor (the same two round trips per event, read and save, with no flow work) in the same run.

Part of `bench/webhook.py`'s report; runnable alone for a quick look:

    .venv/bin/python bench/engine_path.py [--events N] [--conversations N]

Each conversation alternates 「憑證查詢」 (an unlinked chat: linking starts and asks for the ID
number) and 「選單」 (the flow is left, the menu shown): two real state changes per pair, every
event saved with its replies.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.issuance import Table, percentile
from certcore.clock import system_clock
from certcore.config import load_settings
from certcore.core import Core
from dialogs import EventKind, Inbound, engine_for
from dialogs.conversation import Conversation

TEXTS = ("憑證查詢", "選單")


@dataclass
class Run:
    name: str
    conversations: int
    events: int
    wall: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.events / self.wall

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


async def _drive(conversations: int, per_conversation: int, one_event) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def conversation(index: int) -> None:
        for n in range(per_conversation):
            started = time.perf_counter()
            await one_event(index, n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(conversation(i) for i in range(conversations)))
    return time.perf_counter() - started, latencies


async def bench_engine(core: Core, conversations: int, per_conversation: int, tag: str) -> Run:
    engine = engine_for(core)

    async def one_event(index: int, n: int) -> None:
        await engine.handle(
            Inbound(
                conversation_id=f"bench:{tag}:{index}",
                event_id=f"{tag}:{index}:{n}",
                kind=EventKind.TEXT,
                text=TEXTS[n % 2],
            )
        )

    wall, latencies = await _drive(conversations, per_conversation, one_event)
    return Run("engine", conversations, conversations * per_conversation, wall, latencies)


async def bench_storage_floor(
    core: Core, conversations: int, per_conversation: int, tag: str
) -> Run:
    """The two round trips of an event (read its record and state; save state and replies)."""
    records = core.conversations
    now = system_clock()

    async def one_event(index: int, n: int) -> None:
        conversation_id = f"floor:{tag}:{index}"
        async with records.turn(conversation_id, f"{tag}:{index}:{n}") as stored:
            values = Conversation(conversation_id, last_activity_at=now).state_values()
            await stored.save(values, replies='[{"type": "Text", "text": "ok"}]', now=now)

    wall, latencies = await _drive(conversations, per_conversation, one_event)
    return Run("storage floor", conversations, conversations * per_conversation, wall, latencies)


async def measure(events: int, concurrent: int, say=print) -> Table:
    with tempfile.TemporaryDirectory(prefix="certdesk-bench-engine-") as folder:
        settings = load_settings(environ={}, data_dir=Path(folder))
        core = await Core.open(settings, create_ca=True, rng=random.Random(1))
        try:
            runs: list[Run] = []
            for conversations in (1, concurrent):
                per = max(2, events // conversations)
                say(f"engine alone: {conversations} conversation(s) x {per} events ...")
                # A warm-up pass first, so catalogues and compiled statements are loaded.
                await bench_engine(core, conversations, 2, f"warm{conversations}")
                tag = str(conversations)
                runs.append(await bench_storage_floor(core, conversations, per, "f" + tag))
                runs.append(await bench_engine(core, conversations, per, "e" + tag))
        finally:
            await core.close()
    rows = []
    floors = {run.conversations: run for run in runs if run.name == "storage floor"}
    for run in runs:
        floor = floors[run.conversations]
        rows.append(
            [
                f"{run.name}, {run.conversations} at once",
                f"{run.per_second:,.0f}",
                f"{run.ms(50):.2f}",
                f"{run.ms(99):.2f}",
                f"{run.per_second / floor.per_second:.2f}x",
            ]
        )
    return Table(
        title="The engine alone (SQLite, group commit)",
        header=["Path", "events/s", "p50 ms", "p99 ms", "vs storage floor"],
        rows=rows,
        notes=[
            "Storage floor: the same two round trips per event (read record and state, save "
            "state and replies) with no flow work, measured in the same run.",
            "Target: the engine alone >= 2,000 events/s with 200 conversations at once.",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--conversations", type=int, default=200)
    options = parser.parse_args()
    table = asyncio.run(measure(options.events, options.conversations))
    print(table.text())


if __name__ == "__main__":
    main()
