"""`kill -9` of `certdesk serve`, in the middle of a flow and in the middle of an issuance, then a
restart over the same data directory (issue 12, faults).

What must hold whatever instant the process died at: no certificate half-recorded (a record is
pending, issued with its DER, or abandoned — never issued without its certificate, never a
delivery handed over without its certificate), the audit chain still verifies, the customer's
conversation goes on where it was after the restart, a retried message (the browser's retry of
a request that got no answer) is answered from the record instead of being applied twice, and
the download page answers every state with a page, never an error. The kill during an issuance
lands at a random instant of the download POST; the invariants are checked for each of a few
instants rather than for one timed exactly, so the test holds on a slow or busy machine.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from dialogs.turn import decode_choice
from tests.bot.test_serve import _certdesk, _environment, _free_port, _wait_healthy
from tests.dialogs.catalogue import expected_pattern

CUSTOMER = "A123456789"  # 王小明 of the demo customers, born 民國80年1月1日
ROC_BIRTH = "800101"
CODE = re.compile(r"\b[A-Z]{4}-(\d{6})\b")
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Serve:
    """A `certdesk serve` process in dev mode over a data directory, killable and restartable."""

    root: Path
    data_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = self.root / f"serve-{self.starts}.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                _certdesk("serve", "--data-dir", str(self.data_dir), "--port", str(self.port)),
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_healthy(self.process, self.url, log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.root.glob("serve-*.log")))


def request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    call = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with _http.open(call, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Chat:
    """One web chat session, driven over HTTP as the page drives it."""

    serve: Serve
    session: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)

    def open(self) -> None:
        status, body = request(f"{self.serve.url}/api/chat/sessions", b"{}", _JSON)
        assert status == 201, body
        self.session = json.loads(body)["session"]
        status, body = request(f"{self.serve.url}/api/chat/sessions/{self.session}/messages")
        assert status == 200, body
        self.messages = json.loads(body)["messages"]  # the welcome and the menu

    def post(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        url = f"{self.serve.url}/api/chat/sessions/{self.session}/messages"
        status, raw = request(url, json.dumps(body).encode(), _JSON)
        assert status == 200, raw
        replies: list[dict[str, Any]] = json.loads(raw)["messages"]
        self.messages.extend(replies)
        return replies

    def say(self, text: str) -> list[dict[str, Any]]:
        return self.post({"text": text})

    def tap(self, key: str, message_id: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"action": self.action(key)}
        if message_id is not None:
            body["id"] = message_id
        return self.post(body)

    def action(self, key: str) -> str:
        for message in reversed(self.messages):
            for choice in message.get("choices") or []:
                decoded = decode_choice(choice["action"])
                if decoded is not None and decoded[1] == key:
                    return str(choice["action"])
        raise AssertionError(f"no option {key} offered: {self.messages[-1:]}")

    def codes(self) -> list[str]:
        """Every code the development outbox holds, oldest first."""
        status, body = request(f"{self.serve.url}/dev/outbox.json")
        assert status == 200
        return [m.group(1) for e in json.loads(body) if (m := CODE.search(e["text"]))]

    def last_code(self) -> str:
        codes = self.codes()
        assert codes, "no code was sent"
        return codes[-1]


_JSON = {"Content-Type": "application/json"}


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name") and values.get("type") in ("hidden", "radio"):
            self.fields.setdefault(str(values["name"]), values.get("value") or "")


def verify(chat: Chat) -> list[dict[str, Any]]:
    chat.say(ROC_BIRTH)
    chat.tap("sms")
    chat.tap("send")
    return chat.say(chat.last_code())


def to_delivery(chat: Chat) -> str:
    """Link the chat, apply, and return the download page's token."""
    chat.tap("query")
    chat.say(CUSTOMER)
    verify(chat)
    chat.tap("apply")
    chat.tap("agree")
    verify(chat)
    replies = chat.tap("issue")
    link = replies[-1]["link"]
    assert link is not None, replies
    return str(link["url"]).removeprefix("/d/")


def post_download(serve: Serve, token: str) -> tuple[int, bytes]:
    page = f"{serve.url}/d/{token}"
    status, body = request(page)
    assert status == 200, body
    inputs = _Inputs()
    inputs.feed(body.decode())
    fields = {**inputs.fields, "password": "abc123", "password_confirm": "abc123"}
    form = urllib.parse.urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": serve.url}
    return request(page, form, headers)


def assert_consistent(data_dir: Path) -> None:
    """No half-recorded certificate, no delivery without its certificate."""
    with sqlite3.connect(data_dir / "certdesk.sqlite3") as db:
        states = db.execute("SELECT state, der IS NOT NULL FROM certificates").fetchall()
        assert all(state in ("pending", "issued", "abandoned") for state, _ in states), states
        assert all(has_der for state, has_der in states if state == "issued"), states
        handed = db.execute(
            "SELECT d.state, c.state FROM deliveries d LEFT JOIN certificates c"
            " ON c.serial = d.serial WHERE d.serial IS NOT NULL"
        ).fetchall()
        assert all(cert == "issued" for _, cert in handed if cert is not None), handed
        issued = db.execute("SELECT count(*) FROM certificates WHERE state = 'issued'").fetchone()
        audited = db.execute(
            "SELECT count(*) FROM audit_log WHERE action IN"
            " ('certificate.issued', 'certificate.renewed')"
        ).fetchone()
        assert issued == audited


def audit_verifies(serve: Serve) -> None:
    done = subprocess.run(
        _certdesk("audit", "verify", "--data-dir", str(serve.data_dir)),
        env=serve.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def serve(tmp_path: Path, _ca_template: Path) -> Any:
    data_dir = tmp_path / "var"
    shutil.copytree(_ca_template, data_dir)
    port = _free_port()
    env = _environment(CERTDESK_PUBLIC_URL=f"http://127.0.0.1:{port}")
    server = Serve(root=tmp_path, data_dir=data_dir, port=port, env=env)
    server.start()
    yield server
    server.stop()
    assert "Traceback" not in server.logs(), server.logs()


def test_killed_in_the_middle_of_a_flow_the_conversation_goes_on(serve: Serve) -> None:
    chat = Chat(serve)
    chat.open()
    chat.tap("query")
    chat.say(CUSTOMER)
    chat.say(ROC_BIRTH)
    chat.tap("sms")
    wire = chat.action("send")
    sent = chat.post({"action": wire, "id": "send-1"})  # a code goes out; the flow waits
    codes = chat.codes()
    serve.kill()
    serve.start()
    # The browser retries a request it had no answer for: answered from the record, and the
    # code is not sent a second time.
    assert chat.post({"action": wire, "id": "send-1"}) == sent
    assert chat.codes() == codes
    replies = chat.say(codes[-1])
    assert any(expected_pattern("zh_TW", "link.done").fullmatch(m["text"]) for m in replies)
    assert_consistent(serve.data_dir)
    audit_verifies(serve)


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_killed_during_an_issuance_nothing_is_half_recorded(serve: Serve, delay: float) -> None:
    chat = Chat(serve)
    chat.open()
    token = to_delivery(chat)
    answered: list[int] = []
    poster = threading.Thread(
        target=lambda: answered.append(_post_or_refused(serve, token)), daemon=True
    )
    poster.start()
    time.sleep(delay + random.uniform(0, 0.05))
    serve.kill()
    poster.join(timeout=30)
    assert_consistent(serve.data_dir)
    if answered == [200]:  # the file was handed over before the kill: it is on record
        with sqlite3.connect(serve.data_dir / "certdesk.sqlite3") as db:
            assert db.execute("SELECT state FROM deliveries").fetchall() == [("issued",)]
    serve.start()
    assert_consistent(serve.data_dir)
    audit_verifies(serve)
    status, _ = request(f"{serve.url}/d/{token}")
    assert status in (200, 409, 410), status  # a page for every state, never a 500
    assert chat.say("選單"), "the conversation answers after the restart"


def _post_or_refused(serve: Serve, token: str) -> int:
    try:
        return post_download(serve, token)[0]
    except (OSError, urllib.error.URLError):  # the process died under the request
        return 0
