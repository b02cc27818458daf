"""One lane per chat: the work for a chat (an update, a push) runs one job after another.

The engine already applies one conversation's events in order, but a reply is sent after the
engine returns, so two updates of one chat handled side by side could have their replies
overtake each other on the way to Telegram. A lane runs a chat's jobs one at a time, each to
its last send, in the order they came; different chats run side by side. A lane's task exists
while it has work and ends when its queue is empty, so idle chats cost nothing.

The webhook answers 200 once an update is in its lane; at shutdown `close` lets the lanes
finish for a bounded time, then cancels what is left, so no task outlives the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("certdesk.telegram")

Job = Callable[[], Awaitable[Any]]


class LanesClosed(RuntimeError):
    """The app is shutting down: no new work is taken."""


class Lanes:
    def __init__(self) -> None:
        self._queues: dict[int, deque[tuple[Job, asyncio.Future[Any] | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = False

    def submit(self, chat_id: int, job: Job) -> None:
        """Queue a job whose outcome nobody waits for (it logs its own failures)."""
        self._enqueue(chat_id, job, None)

    async def run(self, chat_id: int, job: Job) -> Any:
        """Queue a job and wait for its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(chat_id, job, future)
        return await future

    def busy(self) -> int:
        """Lanes with work queued or running."""
        return len(self._queues)

    async def idle(self) -> None:
        """Return once no lane has work (at once when none has)."""
        await self._idle.wait()

    def _enqueue(self, chat_id: int, job: Job, future: asyncio.Future[Any] | None) -> None:
        if self.closed:
            raise LanesClosed("the Telegram channel is shutting down")
        queue = self._queues.get(chat_id)
        if queue is None:
            queue = self._queues[chat_id] = deque()
            self._idle.clear()
            task = asyncio.create_task(self._drain(chat_id, queue), name=f"telegram-lane-{chat_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append((job, future))

    async def _drain(
        self, chat_id: int, queue: deque[tuple[Job, asyncio.Future[Any] | None]]
    ) -> None:
        try:
            while queue:
                job, future = queue[0]
                try:
                    result = await job()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    if future is None:
                        log.exception("Telegram work for a chat failed")
                    elif not future.done():
                        future.set_exception(error)
                else:
                    if future is not None and not future.done():
                        future.set_result(result)
                queue.popleft()
        finally:
            for _, future in queue:
                if future is not None and not future.done():
                    future.cancel()
            if self._queues.get(chat_id) is queue:
                del self._queues[chat_id]
            if not self._queues:
                self._idle.set()

    async def close(self, grace: float) -> None:
        """Take no more work; let the lanes finish within `grace` seconds, cancel the rest."""
        self.closed = True
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("Telegram: %d chats' work cancelled at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
