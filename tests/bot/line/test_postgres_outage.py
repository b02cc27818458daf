"""PostgreSQL stopped for ten seconds under a LINE conversation (issue 12, faults).

On a PostgreSQL server of the test's own (never the session's): the event in hand when the
server stops waits for it and is answered once it is back; the webhooks that come while it is
down are answered 503, so LINE redelivers them, and each redelivery is then worked off once;
the conversation goes on as if nothing had happened, and the readiness check says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from certcore.config import Settings, load_settings
from tests.bot.line.conftest import Line, sign
from tests.bot.line.test_flows import assert_keys
from tests.postgres import PostgresServer, find_bin_dir

pytestmark = pytest.mark.backends("sqlite")  # the module brings its own PostgreSQL
USER = "U4af4980629cccccccccccccccccccccc"
OUTAGE_SECONDS = 10.0


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    server = PostgresServer(find_bin_dir())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def line_settings(
    data_dir: Path, line_environ: dict[str, str], own_server: PostgresServer
) -> Settings:
    url = own_server.url(own_server.create_database())
    return load_settings(environ=line_environ, data_dir=data_dir, database_url=url)


@pytest.fixture
async def outage_line(line: Line) -> AsyncIterator[Line]:
    yield line


async def post(line: Line, event: dict[str, object]) -> int:
    body = json.dumps({"destination": "Ubot", "events": [event]}).encode()
    return await line.post(body, sign(body))


async def test_postgres_stopped_for_ten_seconds(
    outage_line: Line, own_server: PostgresServer
) -> None:
    line = outage_line
    assert_keys(await line.say(USER, "選單"), "menu.prompt")
    ready = await line.session.get(line.server.make_url("/readyz"))
    assert ready.status == 200

    before = len(line.fake.texts_to(USER))
    own_server.pause()
    in_hand = line.text_event(USER, "常見問題")
    assert await post(line, in_hand) == 200  # taken before anyone knew: it waits for the server
    for _ in range(100):  # the first failing transaction notes the outage
        if not line.core.db.reachable:
            break
        await asyncio.sleep(0.05)
    assert not line.core.db.reachable
    refused = line.text_event(USER, "操作說明")
    assert await post(line, refused) == 503  # LINE redelivers it later
    ready = await line.session.get(line.server.make_url("/readyz"))
    assert ready.status == 503 and "database" in (await ready.json())["problems"]

    await asyncio.sleep(OUTAGE_SECONDS)
    own_server.resume()
    await line.channel.idle()  # the event in hand is answered once the server is back
    for _ in range(100):
        if line.core.db.reachable:
            break
        await asyncio.sleep(0.1)
    redelivered = {**refused, "deliveryContext": {"isRedelivery": True}}
    assert await post(line, redelivered) == 200
    assert await post(line, redelivered) == 200  # a second redelivery is a no-op
    await line.channel.idle()
    # Each answered once, in the order the customer wrote them.
    assert_keys(line.fake.texts_to(USER)[before:], "faq.prompt", "guide.prompt")
    assert_keys(await line.say(USER, "選單"), "flow.left", "menu.prompt")  # the chat goes on
    ready = await line.session.get(line.server.make_url("/readyz"))
    assert ready.status == 200
