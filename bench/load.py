"""Load: N simulated LINE customers through whole linking → application → download journeys,
against one `certdesk serve` on SQLite, one on PostgreSQL, and two on one PostgreSQL.

Why this and not only the webhook benchmark: `bench/webhook.py` measures one cheap turn (the
menu) at the highest rate; what a broker needs to know is whether a crowd of customers each doing
the whole thing — linking with an SMS code, applying with another, downloading the .pfx —
finishes with no error and exactly one certificate each, and what a second instance behind the
load balancer adds. With two instances the bench is the load balancer and sends each webhook and
each download page request to the next instance in turn, so one customer's events land on both
instances: exactly the case the conversation leases exist for.

    .venv/bin/python -m bench.load [--customers N] [--concurrency C]
                                   [--topologies sqlite,pg1,pg2] [--quick]

Every customer is an asyncio task (at most `--concurrency` at once) that sends a signed LINE
webhook per step and waits for the bot's answer (replies and pushes) on the fake LINE API, run
in this process (tests/fakes/line_api.py, with an index per user so that waiting stays cheap).
The one-time codes are read from the development outbox table (dev mode: no SMTP or SMS). Each
topology gets a fresh database; PostgreSQL is the suite's throw-away server (tests/postgres.py:
loopback, fsync off). The instances' logs are kept in `--logs` (default: a temporary directory
removed at the end unless a run failed). Exits non-zero when any error occurred or any customer
does not hold exactly one issued certificate, or when `certdesk audit verify` then finds the
audit chain broken; the instances' log lines at WARNING or above are counted and shown.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from sqlalchemy import func, select

from bench.issuance import Table, free_port, machine_rows, percentile
from bench.webhook import HOST, REPO
from certcore.config import load_settings
from certcore.core import PASSPHRASE_VARIABLE, Core
from certcore.customers import Customer, CustomerKind
from certcore.customers.directory import upsert_customers
from certcore.identity import personal_id_check_digit
from certcore.storage.schema import certificates, dev_outbox
from tests.dialogs.catalogue import expected_pattern
from tests.fakes.line_api import SECRET, TOKEN, FakeLineApi, message_text, uri_buttons

PASSPHRASE = "bench-load-ca-passphrase"
OTP_KEY = "bench-load-shared-otp-key-0123456789abcdef"
EXPORT_PASSWORD = "Load2026pw"
BIRTH = date(1990, 1, 1)
ROC_BIRTH = "790101"
STEP_TIMEOUT = 120.0
"""An answer not there after this long is an error (issuance behind a long queue included)."""
STARTUP_SECONDS = 60.0
CODE = re.compile(r"\b[A-Z]{4}-(\d{6})\b")
TOPOLOGIES = {
    "sqlite": ("1 instance, SQLite", 1, False),
    "pg1": ("1 instance, PostgreSQL", 1, True),
    "pg2": ("2 instances, one PostgreSQL", 2, True),
}


# -- the customers -------------------------------------------------------------------------------


def id_number(n: int) -> str:
    prefix = f"L1{n:07d}"
    return prefix + personal_id_check_digit(prefix)


def mobile(n: int) -> str:
    return f"09{n:08d}"


def line_user(n: int) -> str:
    return f"U{n:032x}"


def directory(count: int) -> list[Customer]:
    return [
        Customer(
            id_number=id_number(n),
            kind=CustomerKind.INDIVIDUAL,
            name=f"負載{n}",
            birth_date=BIRTH,
            mobile=mobile(n),
            email=None,
            accounts=(f"1020-{n:07d}",),
        )
        for n in range(count)
    ]


# -- the fake LINE API, indexed by user -----------------------------------------------------------


class IndexedLineApi(FakeLineApi):
    """The suite's fake LINE API (LINE's rules kept), plus what each user received, indexed,
    and an event per user set on each arrival: a thousand waiting customers would otherwise each
    scan every message sent on every request."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.inbox: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.arrived: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def _record(self, before: int) -> None:
        for sent in self.sent[before:]:
            self.inbox[sent.to].extend(sent.messages)
            self.arrived[sent.to].set()
        # The customers read their own inbox; the flat list would only grow.
        self.sent.clear()
        self.requests.clear()

    async def _reply(self, request: web.Request) -> web.Response:
        before = len(self.sent)
        response = await super()._reply(request)
        self._record(before)
        return response

    async def _push(self, request: web.Request) -> web.Response:
        before = len(self.sent)
        response = await super()._push(request)
        self._record(before)
        return response

    async def until(self, user: str, count: int, timeout: float) -> list[dict[str, Any]]:
        """The user's messages once there are at least `count`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        inbox = self.inbox[user]
        while len(inbox) < count:
            event = self.arrived[user]
            event.clear()
            if len(inbox) >= count:
                break
            await asyncio.wait_for(event.wait(), max(0.0, deadline - time.monotonic()))
        return inbox


# -- the instances ---------------------------------------------------------------------------------


@dataclass
class Instance:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def environment(api_base: str, public_url: str, database_url: str | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")}
    environ.update(
        PYTHONPATH=str(REPO),
        CERTDESK_CA_PASSPHRASE=PASSPHRASE,
        CERTDESK_OTP_KEY=OTP_KEY,
        CERTDESK_PUBLIC_URL=public_url,
        CERTDESK_LINE_CHANNEL_SECRET=SECRET,
        CERTDESK_LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        CERTDESK_LINE_API_BASE=api_base,
    )
    if database_url:
        environ["CERTDESK_DATABASE_URL"] = database_url
    return environ


def start_instance(data_dir: Path, port: int, environ: dict[str, str], log: Path) -> Instance:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            env=environ,
            cwd=data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Instance(port, process, log)


async def wait_healthy(session: ClientSession, instance: Instance) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise RuntimeError(
                f"serve exited with {instance.process.returncode}:\n{instance.log.read_text()}"
            )
        try:
            async with session.get(instance.url + "/healthz") as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"serve not healthy after {STARTUP_SECONDS} s:\n{instance.log.read_text()}")


def stop_instance(instance: Instance) -> None:
    if instance.process.poll() is None:
        instance.process.terminate()
        try:
            instance.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(timeout=10)


# -- one customer's journey ------------------------------------------------------------------------


class StepFailed(Exception):
    pass


@dataclass
class Run:
    """What one topology's run measured."""

    label: str
    customers: int
    instances: int
    load_before: str = ""
    events: int = 0
    page_requests: int = 0
    wall: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    issued: int = 0
    exactly_one: int = 0
    holders_of_two_or_more: int = 0
    log_problems: list[str] = field(default_factory=list)
    """The instances' log lines at WARNING or above."""
    audit: str = ""
    """What `certdesk audit verify` said after the run."""
    audit_ok: bool = False
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds during the run, by whom."""
    machine_busy: float = 0.0
    """The share of all CPUs busy during the run."""

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.exactly_one != self.customers or not self.audit_ok


class Driver:
    """The load balancer and the customers' phones: signs and sends webhooks round-robin,
    waits for the answers on the fake LINE API, reads codes from the outbox."""

    def __init__(
        self,
        session: ClientSession,
        fake: IndexedLineApi,
        instances: list[Instance],
        core: Core,
        public_url: str,
        run: Run,
    ) -> None:
        self.session = session
        self.fake = fake
        self.instances = instances
        self.core = core
        self.public_url = public_url
        self.run = run
        self._next = itertools.count()
        self._ids = itertools.count(1)

    def instance(self) -> Instance:
        return self.instances[next(self._next) % len(self.instances)]

    def event(self, user: str, kind: str, **values: Any) -> dict[str, Any]:
        number = next(self._ids)
        return {
            "type": kind,
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user},
            "webhookEventId": f"01L{number:020d}",
            "deliveryContext": {"isRedelivery": False},
            "replyToken": self.fake.reply_token(user),
            **values,
        }

    async def send(self, step: str, user: str, event: dict[str, Any], *keys: str) -> None:
        """Post the event to the next instance; wait for `keys` (the catalogue keys of the
        answers, in order) to arrive for the user; the time it took, under `step`."""
        before = len(self.fake.inbox[user])
        body = json.dumps({"destination": "Uload", "events": [event]}).encode()
        started = time.monotonic()
        self.run.events += 1
        async with self.session.post(
            self.instance().url + "/line/webhook",
            data=body,
            headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        ) as answer:
            await answer.read()
            if answer.status != 200:
                raise StepFailed(f"{step}: webhook answered {answer.status}")
        try:
            inbox = await self.fake.until(user, before + len(keys), STEP_TIMEOUT)
        except TimeoutError:
            got = [message_text(m)[:40] for m in self.fake.inbox[user][before:]]
            raise StepFailed(f"{step}: no answer after {STEP_TIMEOUT:.0f} s (got {got})") from None
        self.run.latencies[step].append(time.monotonic() - started)
        answers = inbox[before:]
        if len(answers) != len(keys):
            raise StepFailed(f"{step}: {len(keys)} answers expected, {len(answers)} came")
        for message, key in zip(answers, keys, strict=True):
            text = message_text(message)
            pattern = expected_pattern("zh_TW", key)
            if not (
                pattern.fullmatch(text.split("\n1. ")[0]) or pattern.fullmatch(text.split("\n")[0])
            ):
                raise StepFailed(f"{step}: {key} expected, got {text[:60]!r}")

    async def say(self, step: str, user: str, text: str, *keys: str) -> None:
        message = {"id": str(next(self._ids)), "type": "text", "text": text, "quoteToken": "q"}
        await self.send(step, user, self.event(user, "message", message=message), *keys)

    async def tap(self, step: str, user: str, label: str | int, *keys: str) -> None:
        data = self.quick_reply(user, label)
        await self.send(step, user, self.event(user, "postback", postback={"data": data}), *keys)

    def quick_reply(self, user: str, label: str | int) -> str:
        for message in reversed(self.fake.inbox[user]):
            items = (message.get("quickReply") or {}).get("items") or []
            if not items:
                continue
            if isinstance(label, int):
                return str(items[label - 1]["action"]["data"])
            for item in items:
                if str(item["action"]["label"]).startswith(label):
                    return str(item["action"]["data"])
            labels = [item["action"]["label"] for item in items]
            raise StepFailed(f"no quick reply {label!r} in {labels}")
        raise StepFailed("no question with quick replies was sent")

    async def newest_code(self, number: str, after: int) -> tuple[str, int]:
        async with self.core.db.read() as conn:
            row = (
                await conn.execute(
                    select(dev_outbox.c.id, dev_outbox.c.body)
                    .where(dev_outbox.c.destination == number, dev_outbox.c.id > after)
                    .order_by(dev_outbox.c.id.desc())
                    .limit(1)
                )
            ).first()
        found = CODE.search(row.body) if row is not None else None
        if row is None or found is None:
            raise StepFailed("no code in the outbox")
        return found.group(1), int(row.id)

    async def verify(self, prefix: str, user: str, number: str, after: int, *done: str) -> int:
        """Birth date, SMS, send, the code; the outbox id of the code used."""
        await self.say(f"{prefix}: birth date", user, ROC_BIRTH, "verify.destination.prompt")
        await self.tap(f"{prefix}: choose SMS", user, 1, "verify.send.prompt")
        await self.tap(f"{prefix}: send code", user, 1, "verify.send.done", "verify.code.prompt")
        code, used = await self.newest_code(number, after)
        await self.say(f"{prefix}: the code", user, code, *done)
        return used

    async def journey(self, n: int) -> None:
        user, number = line_user(n), mobile(n)
        follow = self.event(user, "follow", follow={"isUnblocked": False})
        await self.send("follow", user, follow, "welcome", "menu.prompt")
        await self.tap("link: 憑證查詢", user, "憑證查詢", "link.id.prompt")
        await self.say("link: ID number", user, id_number(n), "verify.birth_date.prompt")
        used = await self.verify(
            "link", user, number, 0, "verify.code.accepted", "link.done", "query.empty"
        )
        await self.tap("apply: 申請", user, "申請", "apply.consent")
        await self.tap("apply: agree", user, 1, "verify.birth_date.prompt")
        await self.verify("apply", user, number, used, "apply.ready")
        await self.tap("apply: issue", user, 1, "apply.delivery")
        [url] = uri_buttons(self.fake.inbox[user][-1])
        await self.download(user, url.rsplit("/", 1)[1])

    async def download(self, user: str, token: str) -> None:
        before = len(self.fake.inbox[user])
        started = time.monotonic()
        self.run.page_requests += 1
        async with self.session.get(f"{self.instance().url}/d/{token}") as answer:
            page = await answer.text()
            if answer.status != 200:
                raise StepFailed(f"download page: GET answered {answer.status}")
        self.run.latencies["download: GET page"].append(time.monotonic() - started)
        fields = dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page))
        fields.update(password=EXPORT_PASSWORD, password_confirm=EXPORT_PASSWORD)
        fields.setdefault("format", "standard")
        started = time.monotonic()
        self.run.page_requests += 1
        async with self.session.post(
            f"{self.instance().url}/d/{token}", data=fields, headers={"Origin": self.public_url}
        ) as answer:
            pfx = await answer.read()
            disposition = answer.headers.get("Content-Disposition", "")
            if answer.status != 200 or "attachment" not in disposition:
                raise StepFailed(f"download: POST answered {answer.status}, no file")
        self.run.latencies["download: POST → .pfx"].append(time.monotonic() - started)
        if len(pfx) < 500:
            raise StepFailed(f"download: a {len(pfx)}-byte file is no PKCS#12")
        try:
            await self.fake.until(user, before + 1, STEP_TIMEOUT)
        except TimeoutError:
            raise StepFailed("download: the chat was never told of the hand-over") from None
        self.run.latencies["download: POST → chat told"].append(time.monotonic() - started)
        if "憑證申請完成" not in message_text(self.fake.inbox[user][before]):
            raise StepFailed("download: the hand-over message is not 憑證申請完成")


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


# -- one topology ----------------------------------------------------------------------------------


TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (all CPUs, /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / TICKS, sum(fields) / TICKS


def tree_cpu(roots: list[int], *, descendants: bool = True) -> float:
    """CPU seconds used so far by these processes and (unless told not to) their live
    descendants (/proc)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        rest = text[text.rfind(")") + 2 :].split()
        pid = int(stat.parent.name)
        parents[pid] = int(rest[1])
        used[pid] = (int(rest[11]) + int(rest[12])) / TICKS  # utime, stime
    wanted = set(roots)
    grew = descendants
    while grew:
        more = {pid for pid, parent in parents.items() if parent in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return sum(used.get(pid, 0.0) for pid in wanted)


def postgres_pid(postgres: Any) -> int:
    try:
        return int((postgres.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


async def prepare(data_dir: Path, database_url: str | None, count: int) -> Core:
    """The CA and the migrated database with the N customers; the core the bench reads with."""
    settings = load_settings(environ={}, data_dir=data_dir, database_url=database_url)
    core = await Core.open(settings, create_ca=True, environ={PASSPHRASE_VARIABLE: PASSPHRASE})
    people = directory(count)
    for start in range(0, len(people), 500):
        async with core.db.write() as conn:
            await upsert_customers(conn, people[start : start + 500], core.clock())
    return core


async def tally(core: Core, run: Run) -> None:
    async with core.db.read() as conn:
        rows = (
            await conn.execute(
                select(certificates.c.customer_id, func.count())
                .where(certificates.c.state == "issued")
                .group_by(certificates.c.customer_id)
            )
        ).all()
    served = {id_number(n) for n in range(run.customers)}
    held = {str(customer): int(count) for customer, count in rows}
    run.issued = sum(held.values())
    run.exactly_one = sum(1 for customer in served if held.get(customer) == 1)
    run.holders_of_two_or_more = sum(1 for count in held.values() if count >= 2)


async def run_topology(
    key: str,
    workdir: Path,
    postgres: Any,
    count: int,
    concurrency: int,
) -> Run:
    label, instances_wanted, on_postgres = TOPOLOGIES[key]
    root = workdir / key
    data_dir = root / "var"
    root.mkdir(parents=True)
    database_url = postgres.url(postgres.create_database()) if on_postgres else None
    core = await prepare(data_dir, database_url, count)
    fake = IndexedLineApi()
    api_base = await fake.start()
    ports = [free_port() for _ in range(instances_wanted)]
    public_url = f"http://{HOST}:{ports[0]}"
    environ = environment(api_base, public_url, database_url)
    instances = []
    run = Run(label, count, instances_wanted)
    connector = TCPConnector(limit=concurrency * 2)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=300)) as session:
        try:
            for index, port in enumerate(ports):
                instance_dir = data_dir if index == 0 else root / f"var{index + 1}"
                if index:  # another machine: its own copy of the CA files, the same database
                    shutil.copytree(
                        data_dir, instance_dir, ignore=shutil.ignore_patterns("*.sqlite3*")
                    )
                log = workdir / f"{key}-serve-{index + 1}.log"
                instances.append(start_instance(instance_dir, port, environ, log))
            for instance in instances:
                await wait_healthy(session, instance)
            driver = Driver(session, fake, instances, core, public_url, run)
            gate = asyncio.Semaphore(concurrency)

            async def customer(n: int) -> None:
                async with gate:
                    try:
                        await driver.journey(n)
                    except StepFailed as failed:
                        run.errors.append(f"customer {n}: {failed}")
                    except Exception as exc:  # a broken connection is this customer's error
                        run.errors.append(f"customer {n}: {type(exc).__name__}: {exc}")

            run.load_before = load_average()
            print(f"bench: {label}: {count} customers, load {run.load_before} ...", flush=True)
            roots = {
                "serve instances (with their issuance workers)": [i.process.pid for i in instances],
                "PostgreSQL": [postgres_pid(postgres)] if on_postgres else [],
                "load generator and fake LINE API (this process)": [os.getpid()],
            }
            # The instances are this process's children: it counts alone.
            alone = {"load generator and fake LINE API (this process)"}

            def used(name: str) -> float:
                return tree_cpu(roots[name], descendants=name not in alone)

            before = {name: used(name) for name in roots}
            machine_before = machine_cpu()
            started = time.monotonic()
            await asyncio.gather(*(customer(n) for n in range(count)))
            run.wall = time.monotonic() - started
            busy, total = (b - a for a, b in zip(machine_before, machine_cpu(), strict=True))
            run.cpu = {name: used(name) - before[name] for name in roots}
            run.cpu["everything else on the machine"] = max(0.0, busy - sum(run.cpu.values()))
            run.machine_busy = busy / total if total else 0.0
            await tally(core, run)
        finally:
            for instance in instances:
                stop_instance(instance)
            await fake.close()
            await core.close()
    run.log_problems = [line for i in instances for line in log_problems(i.log)]
    run.audit_ok, run.audit = await audit_verify(data_dir, environ)
    return run


def log_problems(log: Path) -> list[str]:
    """The JSON log lines at WARNING or above (the start-up banner is plain text)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            found.append(f"{log.name}: {line[:300]}")
    return found


async def audit_verify(data_dir: Path, environ: dict[str, str]) -> tuple[bool, str]:
    """`certdesk audit verify` on the run's database, as an operator runs it afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "audit",
        "verify",
        "--data-dir",
        str(data_dir),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    lines = output.decode(errors="replace").strip().splitlines()
    return process.returncode == 0, (lines[-1] if lines else "")


# -- the tables ------------------------------------------------------------------------------------


def run_table(run: Run) -> Table:
    rows = [
        [
            f"{run.customers:,}",
            f"{run.events:,}",
            f"{run.page_requests:,}",
            f"{run.wall:.1f}",
            f"{run.events / run.wall:.1f}" if run.wall else "-",
            f"{run.customers / run.wall:.2f}" if run.wall else "-",
            f"{len(run.errors)}",
            f"{run.issued:,}",
            f"{run.exactly_one:,}",
            f"{len(run.log_problems)}",
        ]
    ]
    notes = [
        f"Load average (1/5/15 min) before the run: {run.load_before}.",
        f"certdesk audit verify afterwards: {run.audit or 'no answer'}.",
        f"CPUs busy during the run: {run.machine_busy:.0%} of {os.cpu_count()}; CPU seconds: "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in run.cpu.items())
        + ".",
    ]
    notes += [f"LOG {line}" for line in run.log_problems[:10]]
    notes += [f"ERROR {error}" for error in run.errors[:20]]
    if len(run.errors) > 20:
        notes.append(f"… and {len(run.errors) - 20} more errors")
    return Table(
        title=f"{run.label}: whole journeys (linking, application, download)",
        header=[
            "customers",
            "webhook events",
            "page requests",
            "wall s",
            "events/s",
            "customers/s",
            "errors",
            "certificates issued",
            "customers with exactly one",
            "log warnings",
        ],
        rows=rows,
        notes=notes,
    )


def steps_table(run: Run) -> Table:
    rows = []
    for step, values in run.latencies.items():
        rows.append(
            [
                step,
                f"{len(values):,}",
                f"{percentile(values, 50) * 1000:.0f}",
                f"{percentile(values, 95) * 1000:.0f}",
                f"{percentile(values, 99) * 1000:.0f}",
            ]
        )
    return Table(
        title=f"{run.label}: per step, webhook sent → every answer at the fake LINE API (ms)",
        header=["step", "n", "p50", "p95", "p99"],
        rows=rows,
    )


def summary_table(runs: list[Run], concurrency: int) -> Table:
    base = next((r for r in runs if r.label == TOPOLOGIES["pg1"][0]), None)
    rows = []
    for run in runs:
        rate = run.events / run.wall if run.wall else 0.0
        ratio = f"{rate / (base.events / base.wall):.2f}x" if base and base.wall else "-"
        rows.append(
            [
                run.label,
                f"{run.customers:,}",
                f"{run.wall:.1f}",
                f"{rate:.1f}",
                ratio,
                f"{len(run.errors)}",
                f"{run.exactly_one:,} / {run.customers:,}",
                run.load_before,
            ]
        )
    return Table(
        title=f"Topologies compared ({concurrency} customers at once, {os.cpu_count()} CPUs)",
        header=[
            "topology",
            "customers",
            "wall s",
            "events/s",
            "vs 1 PG instance",
            "errors",
            "exactly one cert",
            "load before",
        ],
        rows=rows,
        notes=[
            "All instances, PostgreSQL and the load generator (with the fake LINE API) share the "
            "same CPUs: a second instance can only add what the cores have left.",
        ],
    )


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--topologies", default="sqlite,pg1,pg2")
    parser.add_argument("--logs", type=Path, default=None, help="keep the serve logs here")
    parser.add_argument("--quick", action="store_true", help="3 customers, for a smoke test")
    options = parser.parse_args(argv)
    if options.quick:
        options.customers = min(options.customers, 3)
    options.topologies = [t for t in options.topologies.split(",") if t]
    unknown = set(options.topologies) - set(TOPOLOGIES)
    if unknown:
        parser.error(f"unknown topologies {sorted(unknown)}: choose from {sorted(TOPOLOGIES)}")
    return options


async def run_all(options: argparse.Namespace, workdir: Path) -> list[Run]:
    postgres = None
    if any(TOPOLOGIES[key][2] for key in options.topologies):
        from tests.postgres import PostgresServer, find_bin_dir

        postgres = PostgresServer(find_bin_dir())
        await asyncio.to_thread(postgres.start)
    runs = []
    try:
        for key in options.topologies:
            runs.append(
                await run_topology(key, workdir, postgres, options.customers, options.concurrency)
            )
    finally:
        if postgres is not None:
            await asyncio.to_thread(postgres.stop)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    print("Machine")
    for key, value in machine_rows():
        print(f"  {key}: {value}")
    print(f"  os.cpu_count(): {os.cpu_count()}; load average now: {load_average()}")
    workdir = Path(tempfile.mkdtemp(prefix="certdesk-bench-load-"))
    failed = True
    runs: list[Run] = []
    try:
        runs = asyncio.run(run_all(options, workdir))
        tables: list[Table] = []
        for run in runs:
            tables += [run_table(run), steps_table(run)]
        tables.append(summary_table(runs, options.concurrency))
        for table in tables:
            print()
            print(table.text())
        print("\nMarkdown:\n")
        for table in tables:
            print(table.markdown())
            print()
        failed = any(r.failed for r in runs)
    finally:
        if options.logs is not None:
            options.logs.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                shutil.copy(log, options.logs / log.name)
        if failed:
            print(f"bench: FAILED; serve logs kept in {options.logs or workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        for run in runs:
            if run.failed:
                print(
                    f"bench: {run.label}: {len(run.errors)} errors, "
                    f"{run.exactly_one}/{run.customers} customers with exactly one certificate, "
                    f"{run.holders_of_two_or_more} with two or more; audit: {run.audit}",
                    file=sys.stderr,
                )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
