"""LINE webhook benchmark: the whole server on SQLite against its floors, measured in one run.

One run prints the machine, then

1. throughput: signed LINE text events per second under wrk (32 connections, pre-signed
   bodies, a unique `webhookEventId` and reply token per request, 10,000 conversations), for
   - a bare aiohttp handler that only answers 200 (the ceiling of the HTTP stack),
   - the minimal stateful floor handler: the signature check, the JSON parse, the same three
     statements per event (select the conversation, version-checked update, event insert)
     group-committed by one writer thread, and the reply POSTed to the fake LINE API after
     the 200,
   - `certdesk serve` (LINE switched on, pointed at the fake API): the whole server,
   where an event counts when its reply reached the fake LINE API (for the bare handler, when
   it was answered); and the whole server's ratio to each;
2. latency: p50/p99 from sending the webhook to its reply reaching the fake LINE API, for the
   floor and the whole server, at a fixed 300 events/s from an open-loop Python generator;
3. the engine alone (`bench/engine_path.py`): one conversation, and 200 at once.

    .venv/bin/python bench/webhook.py [--quick] [--duration SECONDS] [--rate EVENTS_PER_S]

Every server and the fake LINE API are subprocesses on 127.0.0.1, in a temporary directory
removed at the end. The subprocess roles are this same file: `python -m bench.webhook bare|
floor|fake-api --port N …`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from bench.issuance import Table, free_port, machine_rows, percentile

SECRET = "bench-line-channel-secret"
TOKEN = "bench-line-access-token"
HOST = "127.0.0.1"
CONVERSATIONS = 10_000
CONNECTIONS = 32
THREADS = 2
TEXT = "選單"
"""Every event asks for the main menu: a real turn (state saved, the menu's quick replies)."""
THROUGHPUT_RATIO_TARGET = 0.5
THROUGHPUT_FLOOR_TARGET = 1_000.0
P99_TARGET_MS = 50.0
ENGINE_TARGET = 2_000.0
REPO = Path(__file__).resolve().parents[1]
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- the signed webhook bodies --------------------------------------------------------------------


STARTED_MS = int(time.time() * 1000)


def user_id(n: int) -> str:
    return "U" + hashlib.sha256(f"bench-user-{n % CONVERSATIONS}".encode()).hexdigest()[:32]


def webhook_body(n: int, prefix: str) -> bytes:
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": STARTED_MS + n,  # fresh: the channel ignores events older than 6 days
        "source": {"type": "user", "userId": user_id(n)},
        "webhookEventId": f"01{prefix}{n:020d}",
        "deliveryContext": {"isRedelivery": False},
        "replyToken": f"{prefix}{n:012d}",
        "message": {"id": f"{n}", "type": "text", "quoteToken": f"q{n}", "text": TEXT},
    }
    return json.dumps(
        {"destination": "Ubench", "events": [event]}, ensure_ascii=False, separators=(",", ":")
    ).encode()


def signature(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def reply_token_of(body: bytes) -> str:
    return str(json.loads(body)["events"][0]["replyToken"])


def wrk_script(path: Path, requests_file: Path) -> None:
    """Each wrk thread sends its own slice of the pre-signed requests, each once."""
    path.write_text(
        f"""
local lines = {{}}
for line in io.lines("{requests_file}") do lines[#lines + 1] = line end
local counter = 1
local threads = {{}}
function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end
function init(args)
  counter = id + 1
end
function request()
  local line = lines[counter]
  counter = counter + {THREADS}
  if counter > #lines then counter = id + 1 end
  local tab = string.find(line, "\\t")
  local sig = string.sub(line, 1, tab - 1)
  local body = string.sub(line, tab + 1)
  return wrk.format("POST", "/line/webhook",
    {{["Content-Type"] = "application/json", ["X-Line-Signature"] = sig}}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%.0f duration_us=%.0f errors=%.0f status=%.0f\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status))
end
""",
        encoding="utf-8",
    )


# -- the subprocess roles --------------------------------------------------------------------------


async def serve_forever(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    print("ready", flush=True)
    await stopped.wait()
    await runner.cleanup()


def bare_app() -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/line/webhook", webhook)
    return app


def fake_api_app() -> web.Application:
    """The LINE API's reply and push endpoints, noting when each reply token's reply arrived."""
    arrived: dict[str, float] = {}

    async def reply(request: web.Request) -> web.Response:
        body = await request.json()
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "Authentication failed"}, status=401)
        arrived.setdefault(body["replyToken"], time.monotonic())
        return web.json_response({"sentMessages": [{"id": "1", "quoteToken": "q"}]})

    async def push(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"sentMessages": [{"id": "1", "quoteToken": "q"}]})

    async def loading(request: web.Request) -> web.Response:
        return web.json_response({}, status=202)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(arrived)

    async def reset(request: web.Request) -> web.Response:
        arrived.clear()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v2/bot/message/reply", reply)
    app.router.add_post("/v2/bot/message/push", push)
    app.router.add_post("/v2/bot/chat/loading/start", loading)
    app.router.add_get("/bench/arrived", stats)
    app.router.add_post("/bench/reset", reset)
    return app


FLOOR_WORKERS = 64
FLOOR_QUEUE_BOUND = 512
FLOOR_BACKPRESSURE_SECONDS = 1.0
"""The LINE channel's own worker count and flow control (bot/channels/line/adapter.py)."""
FLOOR_SELECT = "SELECT version FROM conversations WHERE id = ?"
FLOOR_UPDATE = (
    "UPDATE conversations SET seq = seq + 1, version = version + 1 WHERE id = ? AND version = ?"
)
FLOOR_INSERT_STATE = "INSERT INTO conversations (id, seq, version) VALUES (?, 1, 1)"
FLOOR_INSERT_EVENT = "INSERT INTO conversation_events (conversation_id, event_id) VALUES (?, ?)"


def menu_reply() -> list[dict[str, Any]]:
    """The LINE messages the server answers 選單 with (the main menu and its quick replies),
    rendered once with the server's own renderer: the floor sends the same reply, so the
    comparison is of the work in between, not of the size of what is sent."""
    from bot.channels.line.render import render_all
    from certcore.i18n import translate
    from dialogs import Choices, Option
    from dialogs.flows.menu import MENU_ITEMS
    from dialogs.turn import encode_choice

    menu = Choices(
        translate("zh_TW", "menu.prompt"),
        tuple(
            Option(encode_choice(1, key), translate("zh_TW", label)) for key, label in MENU_ITEMS
        ),
    )
    return [dict(message) for message in render_all([menu], "zh_TW")]


def floor_app(database: str, api: str) -> web.Application:
    """The minimal stateful handler: what any stateful webhook must do, and nothing more."""
    from linebot.v3.webhook import WebhookParser  # the server's signature check and parse

    from certcore.storage.groupcommit import GroupCommitter

    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE conversations (id TEXT PRIMARY KEY, seq INT, version INT)")
        conn.execute(
            "CREATE TABLE conversation_events (conversation_id TEXT, event_id TEXT, "
            "PRIMARY KEY (conversation_id, event_id))"
        )
    writer = GroupCommitter(f"sqlite:///{database}")
    parser = WebhookParser(SECRET)
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    room = asyncio.Event()
    workers: list[asyncio.Task[None]] = []
    session: list[ClientSession] = []

    def apply(conn: sqlite3.Connection, conversation: str, event_id: str) -> None:
        row = conn.execute(FLOOR_SELECT, (conversation,)).fetchone()
        if row is None:
            conn.execute(FLOOR_INSERT_STATE, (conversation,))
        else:
            conn.execute(FLOOR_UPDATE, (conversation, row[0]))
        conn.execute(FLOOR_INSERT_EVENT, (conversation, event_id))

    messages = menu_reply()

    async def work(conversation: str, event_id: str, reply_token: str) -> None:
        await writer.write(lambda conn: apply(conn, conversation, event_id))
        body = {"replyToken": reply_token, "messages": messages}
        async with session[0].post(
            f"{api}/v2/bot/message/reply", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as answer:
            await answer.read()

    async def webhook(request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        try:
            events = parser.parse(body, request.headers.get("X-Line-Signature", ""))
        except Exception:
            return web.Response(status=401)
        if queue.qsize() >= FLOOR_QUEUE_BOUND:  # the server's flow control, not a weaker one
            room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(room.wait(), FLOOR_BACKPRESSURE_SECONDS)
        for event in events:
            queue.put_nowait((event.source.user_id, event.webhook_event_id, event.reply_token))
        return web.Response(text="OK")

    async def worker() -> None:
        # A fixed pool of workers and the server's backpressure (the webhook waits for room in
        # a long queue before its 200): a task per event, or answers that outrun the work, let
        # a burst slow every event, and the floor should be the best simple handler.
        while True:
            conversation, event_id, reply_token = await queue.get()
            if queue.qsize() < FLOOR_QUEUE_BOUND:
                room.set()
            try:
                await work(conversation, event_id, reply_token)
            except Exception as exc:  # a failed reply is this event's loss, not the worker's
                print(f"floor: reply failed: {exc!r}", file=sys.stderr)
            finally:
                queue.task_done()

    async def lifecycle(app: web.Application) -> Any:
        session.append(ClientSession(connector=TCPConnector(limit=64)))
        workers.extend(asyncio.create_task(worker()) for _ in range(FLOOR_WORKERS))
        yield
        await queue.join()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await session[0].close()
        writer.close()

    app = web.Application()
    app.router.add_post("/line/webhook", webhook)
    app.cleanup_ctx.append(lifecycle)
    return app


# -- the conductor --------------------------------------------------------------------------------


class Process:
    """A subprocess in its own process group, always stopped by `stop`."""

    def __init__(self, label: str, command: list[str], workdir: Path, environ: dict[str, str]):
        self.label = label
        self.command = command
        self.workdir = workdir
        self.environ = environ
        self.log_path = workdir / (re.sub(r"[^a-z0-9]+", "-", label.lower()) + ".log")
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            env=self.environ,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_listening(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError), _socket_to(port):
                return
            time.sleep(0.1)
        raise SystemExit(f"bench: {self.label} did not start:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            return "\n".join(f"  | {line}" for line in text)
        return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def _socket_to(port: int) -> Any:
    import socket

    with socket.create_connection((HOST, port), timeout=1) as sock:
        yield sock


def role_command(role: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench.webhook", role, *args]


def arrived(api_port: int) -> dict[str, float]:
    with _http.open(f"http://{HOST}:{api_port}/bench/arrived", timeout=30) as answer:
        values: dict[str, float] = json.loads(answer.read())
    return values


def reset_arrived(api_port: int) -> None:
    request = urllib.request.Request(f"http://{HOST}:{api_port}/bench/reset", method="POST")
    with _http.open(request, timeout=10):
        pass


@dataclass
class Throughput:
    label: str
    sent: int
    answered_per_second: float
    done_per_second: float
    errors: int
    backlog_seconds: float


def run_wrk(url: str, script: Path, duration: float) -> tuple[int, float, int]:
    finished = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(duration))}s",
            "--timeout=10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    match = re.search(r"^BENCH (.*)$", finished.stdout, re.MULTILINE)
    if finished.returncode != 0 or match is None:
        raise SystemExit(f"bench: wrk failed:\n{finished.stdout}{finished.stderr}")
    values = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", match.group(1))}
    return (
        int(values["requests"]),
        values["duration_us"] / 1e6,
        int(values["errors"] + values["status"]),
    )


def measure_throughput(
    label: str, port: int, api_port: int | None, script: Path, duration: float, expected: int
) -> Throughput:
    if api_port is not None:
        reset_arrived(api_port)
    started = time.monotonic()
    sent, wall, errors = run_wrk(f"http://{HOST}:{port}/line/webhook", script, duration)
    ended = started + wall
    if api_port is None:
        return Throughput(label, sent, sent / wall, sent / wall, errors, 0.0)
    # Let the backlog drain: the server answered 200 before the work was done.
    deadline = time.monotonic() + 120
    times = arrived(api_port)
    while len(times) < min(sent, expected) and time.monotonic() < deadline:
        time.sleep(0.5)
        previous = len(times)
        times = arrived(api_port)
        if len(times) == previous and time.monotonic() > ended + 30:
            break
    in_window = sum(1 for t in times.values() if t <= ended)
    last = max(times.values(), default=ended)
    return Throughput(
        label,
        sent,
        sent / wall,
        in_window / wall,
        errors + max(0, sent - len(times)),
        max(0.0, last - ended),
    )


async def open_loop(
    port: int, bodies: list[bytes], rate: float, duration: float
) -> tuple[dict[str, float], int]:
    """Send at a fixed rate, whatever the answers take; the send time of each reply token."""
    sent: dict[str, float] = {}
    errors = 0
    count = min(len(bodies), int(rate * duration))
    url = f"http://{HOST}:{port}/line/webhook"
    async with ClientSession(
        connector=TCPConnector(limit=256), timeout=ClientTimeout(total=30)
    ) as session:

        async def one(body: bytes) -> None:
            nonlocal errors
            token = reply_token_of(body)
            sent[token] = time.monotonic()
            try:
                async with session.post(
                    url,
                    data=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Line-Signature": signature(body),
                    },
                ) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
            except Exception:
                errors += 1

        start = time.monotonic()
        tasks = []
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(bodies[n])))
        await asyncio.gather(*tasks)
    return sent, errors


@dataclass
class Latency:
    label: str
    events: int
    p50_ms: float
    p99_ms: float
    lost: int


def measure_latency(
    label: str, port: int, api_port: int, bodies: list[bytes], rate: float, duration: float
) -> Latency:
    reset_arrived(api_port)
    sent, errors = asyncio.run(open_loop(port, bodies, rate, duration))
    deadline = time.monotonic() + 30
    times = arrived(api_port)
    while len(times) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.2)
        times = arrived(api_port)
    latencies = [times[token] - at for token, at in sent.items() if token in times]
    return Latency(
        label,
        len(sent),
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        errors + len(sent) - len(latencies),
    )


def write_requests(path: Path, prefix: str, count: int) -> list[bytes]:
    bodies = [webhook_body(n, prefix) for n in range(count)]
    with path.open("w", encoding="utf-8") as handle:
        for body in bodies:
            handle.write(signature(body) + "\t" + body.decode() + "\n")
    return bodies


def clean_environment(workdir: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")}
    environ.update(
        PYTHONPATH=str(REPO),
        CERTDESK_CA_PASSPHRASE="bench-ca-passphrase",
        CERTDESK_DATA_DIR=str(workdir / "var"),
    )
    return environ


def run(options: argparse.Namespace) -> list[Table]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (make bench installs it)")
    duration, rate = options.duration, options.rate
    tables: list[Table] = []
    with tempfile.TemporaryDirectory(prefix="certdesk-bench-webhook-") as folder:
        workdir = Path(folder)
        environ = clean_environment(workdir)
        api_port = free_port()
        api = Process(
            "fake LINE API", role_command("fake-api", "--port", str(api_port)), workdir, environ
        )
        processes = [api]
        try:
            api.start()
            api.wait_listening(api_port)
            api_base = f"http://{HOST}:{api_port}"
            # Enough unique events for a stateful server's run (no event repeats); the bare
            # handler keeps no state, so it may go round its file more than once.
            count = int(options.max_rate * duration * 1.2) + 1000
            servers: list[tuple[str, list[str], dict[str, str], bool]] = [
                ("bare aiohttp handler (200 only)", ["bare"], {}, False),
                (
                    "minimal stateful floor handler",
                    ["floor", "--db", str(workdir / "floor.sqlite3"), "--api", api_base],
                    {},
                    True,
                ),
                (
                    "certdesk serve (SQLite)",
                    [],
                    {
                        "CERTDESK_LINE_CHANNEL_SECRET": SECRET,
                        "CERTDESK_LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
                        "CERTDESK_LINE_API_BASE": api_base,
                    },
                    True,
                ),
            ]
            throughput: list[Throughput] = []
            latency: list[Latency] = []
            for index, (label, role, extra, stateful) in enumerate(servers):
                port = free_port()
                if role:
                    command = role_command(role[0], "--port", str(port), *role[1:])
                else:
                    command = [sys.executable, "-m", "bot", "serve", "--port", str(port)]
                server = Process(label, command, workdir, {**environ, **extra})
                processes.append(server)
                print(f"bench: {label} ...", flush=True)
                server.start()
                server.wait_listening(port)
                requests_file = workdir / f"requests-{index}.tsv"
                write_requests(requests_file, f"t{index}x", count)
                script = workdir / f"wrk-{index}.lua"
                wrk_script(script, requests_file)
                # Warm up (catalogues, compiled statements, connections) on other events.
                warm = [webhook_body(n, f"w{index}x") for n in range(200)]
                asyncio.run(open_loop(port, warm, 400, 0.5))
                time.sleep(1)
                throughput.append(
                    measure_throughput(
                        label, port, api_port if stateful else None, script, duration, count
                    )
                )
                if stateful:
                    time.sleep(1)
                    latency_bodies = [
                        webhook_body(n, f"l{index}x") for n in range(int(rate * duration) + 1)
                    ]
                    latency.append(
                        measure_latency(label, port, api_port, latency_bodies, rate, duration)
                    )
                server.stop()
                processes.remove(server)
        finally:
            for process in processes:
                process.stop()
    tables.append(throughput_table(throughput, duration))
    tables.append(latency_table(latency, rate))
    from bench.engine_path import measure

    tables.append(asyncio.run(measure(options.engine_events, 200)))
    return tables


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def throughput_table(results: list[Throughput], duration: float) -> Table:
    bare, floor, whole = results
    rows = []
    for result in results:
        rows.append(
            [
                result.label,
                f"{result.answered_per_second:,.0f}",
                f"{result.done_per_second:,.0f}",
                f"{result.errors}",
                f"{result.backlog_seconds:.1f}",
            ]
        )
    ratio_floor = whole.done_per_second / floor.done_per_second
    ratio_bare = whole.done_per_second / bare.done_per_second
    ratio_met = verdict(ratio_floor >= THROUGHPUT_RATIO_TARGET)
    rate_met = verdict(whole.done_per_second >= THROUGHPUT_FLOOR_TARGET)
    return Table(
        title=f"Signed LINE text events through the webhook "
        f"(wrk, {CONNECTIONS} connections, {duration:.0f} s)",
        header=["Handler", "answered/s", "events done/s", "errors", "backlog s"],
        rows=rows,
        notes=[
            "events done/s: replies that reached the fake LINE API within the run (bare: answers).",
            "backlog s: how long after the run the last reply arrived (the 200 comes first).",
            f"Whole server / floor handler: {ratio_floor:.2f}x "
            f"(target >= {THROUGHPUT_RATIO_TARGET}x: {ratio_met}); "
            f"/ bare handler: {ratio_bare:.2f}x; "
            f">= {THROUGHPUT_FLOOR_TARGET:,.0f} events/s: {rate_met}.",
            "Floors measured in the same run, with the same load generator.",
        ],
    )


def latency_table(results: list[Latency], rate: float) -> Table:
    rows = [
        [r.label, f"{r.events}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.lost}"] for r in results
    ]
    whole = results[-1]
    return Table(
        title=f"Webhook to reply at the fake LINE API, at {rate:.0f} events/s (open loop)",
        header=["Handler", "events", "p50 ms", "p99 ms", "lost"],
        rows=rows,
        notes=[
            f"Target: p99 <= {P99_TARGET_MS:.0f} ms through the whole server: "
            f"{verdict(whole.p99_ms <= P99_TARGET_MS and whole.lost == 0)}."
        ],
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    for role in ("bare", "floor", "fake-api"):
        one = sub.add_parser(role)
        one.add_argument("--port", type=int, required=True)
        if role == "floor":
            one.add_argument("--db", required=True)
            one.add_argument("--api", required=True)
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument(
        "--max-rate", type=float, default=8_000.0, help="unique events prepared per second of run"
    )
    parser.add_argument("--engine-events", type=int, default=4000)
    options = parser.parse_args(argv)
    if options.quick:
        options.duration, options.engine_events = 3.0, 1000
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if options.role == "bare":
        asyncio.run(serve_forever(bare_app(), options.port))
        return 0
    if options.role == "fake-api":
        asyncio.run(serve_forever(fake_api_app(), options.port))
        return 0
    if options.role == "floor":
        asyncio.run(serve_forever(floor_app(options.db, options.api), options.port))
        return 0
    print("Machine")
    for key, value in machine_rows():
        print(f"  {key}: {value}")
    tables = run(options)
    for table in tables:
        print()
        print(table.text())
    print("\nMarkdown:\n")
    for table in tables:
        print(table.markdown())
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
